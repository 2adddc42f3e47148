// My sessions: every device signed in as me, with sign-out per device and
// "sign out everywhere else".

import { tether, describe } from '../client.js';
import { h, replace, ago, until, timeEl, browserName } from '../dom.js';
import { dataTable, autoRefresh, updatedAt, actionRunner } from './parts.js';

export function sessionsView({ signOut }) {
  const list = h('div', { class: 'list', 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const status = h('p', { class: 'hint', 'aria-live': 'polite' });
  const updated = h('p', { class: 'hint' });
  let destroyed = false;

  // `force`: re-render even when focus is inside the list (after an action).
  const load = async (force = false) => {
    try {
      const { sessions } = await tether.rest('GET', '/api/auth/sessions');
      if (destroyed) return;
      render(sessions, force);
      updatedAt(updated);
    } catch (e) {
      if (!destroyed) status.textContent = describe(e);
    }
  };

  const act = actionRunner(status, () => load(true));

  const render = (sessions, force) => {
    list.removeAttribute('aria-busy');
    // An auto-refresh does not pull a row from under the keyboard.
    if (!force && list.contains(document.activeElement)) return;
    const others = sessions.filter((s) => !s.current).length;
    everywhere.disabled = others === 0;
    replace(list, dataTable('My sessions', ['Device', 'IP address', 'Signed in', 'Last seen', 'Ends', 'Sockets', ''],
      sessions.map((s) => ({
        attrs: { dataset: { session: s.id, current: String(s.current) } },
        cells: [
          h('span', { title: s.user_agent || '' }, browserName(s.user_agent),
            s.current ? h('span', { class: 'tag' }, 'This device') : null),
          s.client_ip || '—',
          timeEl(s.created_at, ago(s.created_at)),
          timeEl(s.last_seen_at, ago(s.last_seen_at)),
          timeEl(s.expires_at, until(s.expires_at)),
          String(s.sockets ?? 0),
          h('button', {
            type: 'button',
            class: 'danger small',
            // This device: a plain sign-out, so the page says "You have signed out".
            onclick: s.current ? signOut
              : () => act('DELETE', `/api/auth/sessions/${encodeURIComponent(s.id)}`, undefined, () => 'Signed out that device.'),
          }, s.current ? 'Sign out this device' : 'Sign out'),
        ],
      })), 'No sessions.'));
  };

  const everywhere = h('button', {
    type: 'button',
    class: 'danger',
    onclick: () => act('DELETE', '/api/auth/sessions', undefined, (res) => `Signed out ${res.ended} other session${res.ended === 1 ? '' : 's'}.`),
  }, 'Sign out everywhere else');

  const el = h('section', { dataset: { view: 'sessions' } },
    h('h1', { tabindex: '-1' }, 'My sessions'),
    h('article', { class: 'card' },
      h('p', { class: 'muted' }, 'Every browser or device signed in as you. Signing one out closes its live connections at once.'),
      h('div', { class: 'toolbar' },
        everywhere,
        h('button', { type: 'button', class: 'secondary', onclick: () => load(true) }, 'Refresh'),
        updated),
      status,
      list));
  load();
  const stop = autoRefresh(load, 5000);
  return { el, destroy: () => { destroyed = true; stop(); } };
}
