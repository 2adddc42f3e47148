// Admin: the audit trail (needs admin:audit) — who signed in, out or failed
// to, which sessions ended and why, who changed which user, refused sockets.
// Filters by user and action; a row's session links to the Sessions panel,
// filtered to that session's user.

import { tether, describe } from '../client.js';
import { h, replace, ago, timeEl, browserName } from '../dom.js';
import { dataTable, autoRefresh, updatedAt, renderPager, fillUserOptions } from './parts.js';

const PER_PAGE = 50;

/** Every action the server records (src/audit/mod.rs). */
const ACTIONS = [
  'login.success', 'login.failure', 'login.throttled', 'logout', 'session.revoked',
  'password.changed', 'user.created', 'user.roles_changed', 'user.disabled', 'user.enabled',
  'ws.refused',
];

/** Who did it, as a person reads it. */
function actorText(actor) {
  if (actor.type === 'user') return actor.username ?? actor.user_id ?? 'a user';
  return { cli: 'Command line', system: 'tether', anonymous: 'Not signed in' }[actor.type] ?? actor.type;
}

/** The details of an event in a few words. */
function detailsText(e) {
  const d = e.details ?? {};
  switch (e.action) {
    case 'login.failure':
    case 'login.throttled':
      return `as “${d.username ?? ''}”`;
    case 'session.revoked':
      return `${d.reason ?? ''} (by ${d.by ?? '?'})`;
    case 'user.roles_changed':
      return `${(d.before ?? []).join(', ') || 'none'} → ${(d.after ?? []).join(', ') || 'none'}`;
    case 'user.created':
      return (d.roles ?? []).join(', ');
    case 'ws.refused':
      return d.origin ? `${d.reason} (${d.origin})` : d.reason ?? '';
    default:
      return Object.keys(d).length ? JSON.stringify(d) : '';
  }
}

/**
 * The Audit panel. `directory` maps user ids to names (shared with the other
 * panels); `showSessions(userId)`, when given, opens the Sessions panel on
 * that user.
 */
export function auditPanel(directory, showSessions) {
  let destroyed = false;
  let page = 1;
  let last = { events: [], total: 0 };
  const reload = () => { page = 1; load(true); };
  const user = h('select', { id: 'admin-audit-user', onchange: reload });
  const action = h('select', { id: 'admin-audit-action', onchange: reload },
    h('option', { value: '' }, 'Every action'),
    ACTIONS.map((a) => h('option', { value: a }, a)));
  const list = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const status = h('p', { class: 'hint', 'aria-live': 'polite', id: 'admin-audit-status' });
  const updated = h('p', { class: 'hint' });
  const pager = h('div', { class: 'pager' });

  const fillUsers = () => fillUserOptions(user, directory);

  const load = async (force = false) => {
    const query = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
    if (user.value) query.set('user_id', user.value);
    if (action.value) query.set('action', action.value);
    try {
      last = await tether.rest('GET', `/api/admin/audit?${query}`);
      if (destroyed) return;
      status.textContent = '';
      render(force);
      updatedAt(updated);
    } catch (e) {
      if (!destroyed) status.textContent = describe(e);
    }
  };

  const sessionCell = (e) => {
    const sid = e.target.session_id;
    if (!sid) return '—';
    const label = h('code', { title: sid }, sid.slice(0, 8));
    const owner = e.target.user_id;
    if (!owner || !showSessions) return label;
    return h('button', {
      type: 'button',
      class: 'link',
      title: `Show the sessions of ${e.target.username ?? 'this user'}`,
      onclick: () => showSessions(owner, e.target.username),
    }, label);
  };

  const render = (force) => {
    list.removeAttribute('aria-busy');
    if (!force && list.contains(document.activeElement)) return;
    const rows = last.events.map((e) => ({
      attrs: { dataset: { action: e.action, username: e.target.username ?? '', actor: actorText(e.actor) } },
      cells: [
        timeEl(e.at, ago(e.at)),
        h('span', { class: 'tag' }, e.action),
        actorText(e.actor),
        e.target.username ?? e.target.user_id ?? '—',
        sessionCell(e),
        h('span', { title: e.user_agent || '' }, e.client_ip || '—',
          e.user_agent ? ` · ${browserName(e.user_agent)}` : ''),
        detailsText(e),
      ],
    }));
    replace(list, dataTable('Audit trail', ['When', 'Action', 'By', 'User', 'Session', 'Client', 'Details'], rows,
      'No events.'));
    renderPager(pager, {
      page, total: last.total, perPage: PER_PAGE, noun: 'events', labels: ['Newer', 'Older'],
      go: (p) => { page = p; load(true); },
    });
  };

  fillUsers();
  const el = h('article', { class: 'card', 'aria-labelledby': 'admin-audit-title', id: 'admin-audit' },
    h('h2', { id: 'admin-audit-title' }, 'Audit'),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field inline' }, h('label', { for: user.id }, 'User'), user),
      h('div', { class: 'field inline' }, h('label', { for: action.id }, 'Action'), action),
      h('button', { type: 'button', class: 'secondary', onclick: () => load(true) }, 'Refresh'),
      updated),
    status,
    list,
    pager);
  load();
  // New events arrive as people sign in and out: the first page stays current.
  const stop = autoRefresh(() => { if (page === 1) load(); }, 5000, el);
  return {
    el,
    shown: () => { if (page === 1) load(); },
    usersChanged: fillUsers,
    destroy: () => { destroyed = true; stop(); },
  };
}
