// The "your session ends soon" notice, from `session.expiring`; for an idle
// deadline it offers "Stay signed in", which sends `session.refresh`.

import { tether } from '../client.js';
import { h, replace } from '../dom.js';
import { on } from '../state.js';

export function expiringNotice() {
  const el = h('div', { class: 'expiring', 'aria-live': 'polite' });
  let timer = null;

  const hide = () => {
    clearInterval(timer);
    replace(el);
  };

  const show = ({ in_secs: inSecs, kind }) => {
    clearInterval(timer);
    const deadline = Date.now() + Math.max(0, Number(inSecs) || 0) * 1000;
    const text = h('span');
    const error = h('span', { class: 'error-text' });
    const tick = () => {
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      text.textContent = kind === 'absolute'
        ? `Your session reaches its time limit in ${left} s; you will need to sign in again.`
        : `Your session ends in ${left} s because of inactivity.`;
      if (left === 0) clearInterval(timer);
    };
    tick();
    timer = setInterval(tick, 1000);
    const stay = kind === 'idle' && h('button', {
      type: 'button',
      onclick: async () => {
        try {
          await tether.request('session.refresh');
          hide();
        } catch (e) {
          error.textContent = ` ${e.message || 'Could not extend the session.'}`;
        }
      },
    }, 'Stay signed in');
    replace(el, h('p', { class: 'notice warning', role: 'status' }, text, error, ' ', stay,
      h('button', { type: 'button', class: 'secondary', onclick: hide }, 'Dismiss')));
  };

  const unsubscribe = on('expiring', show);
  return { el, unsubscribe: () => { unsubscribe(); hide(); } };
}
