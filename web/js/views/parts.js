// Pieces shared by the sessions and admin screens: a table that becomes a
// list of cards on a narrow screen, and a polite auto-refresh.

import { h } from '../dom.js';

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
