// Pieces shared by the sessions and admin screens: a table that becomes a
// list of cards on a narrow screen, a polite auto-refresh, and the runner for
// buttons that call the API.

import { tether, describe } from '../client.js';
import { h } from '../dom.js';

/**
 * Returns `act(method, path, body, done)` for a screen's buttons: it shows
 * progress and then `done(response)` (or the error) in `status`, reloads the
 * screen's data after a success, and resolves to whether the call succeeded.
 */
export function actionRunner(status, reload) {
  return async (method, path, body, done) => {
    status.textContent = 'Working…';
    try {
      const res = await tether.rest(method, path, body);
      status.textContent = done(res);
      await reload();
      return true;
    } catch (e) {
      status.textContent = describe(e);
      return false;
    }
  };
}

/**
 * columns: [{label}]; rows: [{attrs, cells: [node|string, …]}].
 * Each cell carries its column's label (shown by the CSS on narrow screens).
 */
export function dataTable(caption, columns, rows, emptyText) {
  if (!rows.length) return h('p', { class: 'muted empty' }, emptyText);
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map(({ attrs, cells }) => h('tr', attrs ?? {},
        cells.map((cell, i) => h('td', { dataset: { label: columns[i] } }, cell)))))));
}

const IDLE_STOP_MS = 2 * 60 * 1000;
let lastInput = Date.now();
for (const type of ['pointerdown', 'keydown', 'wheel', 'touchstart']) {
  window.addEventListener(type, () => { lastInput = Date.now(); }, { passive: true, capture: true });
}

/**
 * Calls `refresh` every `ms` while the page is visible and someone used it in
 * the last two minutes: each request extends the session, so an unattended
 * tab must not keep it alive forever. Returns the stop function.
 */
export function autoRefresh(refresh, ms) {
  const timer = setInterval(() => {
    if (document.visibilityState !== 'visible') return;
    if (Date.now() - lastInput > IDLE_STOP_MS) return;
    refresh();
  }, ms);
  return () => clearInterval(timer);
}

/** "Updated 12:34:56" line. */
export function updatedAt(el) {
  el.textContent = `Updated ${new Date().toLocaleTimeString()}`;
}
