// Pieces shared by the sessions and admin screens: a table that becomes a
// list of cards on a narrow screen, a polite auto-refresh, and the runner for
// buttons that call the API.

import { tether, describe } from '../client.js';
import { h, replace } from '../dom.js';

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
export function autoRefresh(refresh, ms, el = null) {
  const timer = setInterval(() => {
    if (document.visibilityState !== 'visible') return;
    // A panel on a tab not shown (admin screen) waits until it is.
    if (el?.closest('[hidden]')) return;
    if (Date.now() - lastInput > IDLE_STOP_MS) return;
    refresh();
  }, ms);
  return () => clearInterval(timer);
}

/** "Updated 12:34:56" line. */
export function updatedAt(el) {
  el.textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

/**
 * Fills `pager` with Previous/Next around "Page P of N (T noun)", or empties
 * it when everything fits on one page; `go(page)` loads another page.
 */
export function renderPager(pager, { page, total, perPage, noun, go, labels = ['Previous', 'Next'] }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  replace(pager, pages > 1 && [
    h('button', { type: 'button', class: 'small secondary', disabled: page <= 1, onclick: () => go(page - 1) }, labels[0]),
    h('span', {}, `Page ${page} of ${pages} (${total} ${noun})`),
    h('button', { type: 'button', class: 'small secondary', disabled: page >= pages, onclick: () => go(page + 1) }, labels[1]),
  ]);
}

/** Fills a user filter `select` with "Everyone" and the names in `directory` (id → name), keeping the choice. */
export function fillUserOptions(select, directory) {
  const chosen = select.value;
  const names = [...directory.entries()].sort((a, b) => a[1].localeCompare(b[1]));
  replace(select, h('option', { value: '' }, 'Everyone'),
    names.map(([id, name]) => h('option', { value: id, selected: id === chosen }, name)));
  select.value = chosen;
}
