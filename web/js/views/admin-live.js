// Admin: Live (needs admin:sessions). Line charts of the last 15 minutes,
// one point a second, from GET /api/admin/stats (summed over every
// instance): open sockets, messages by outcome, sign-ins by outcome,
// sessions ended by reason; the current numbers beside each chart.
// Drawn as SVG in the page: no library, no inline style (the CSP refuses
// it); colours come from classes in css/live.css.

import { tether, describe } from '../client.js';
import { h, replace } from '../dom.js';
import { autoRefresh, updatedAt } from './parts.js';

const SVG = 'http://www.w3.org/2000/svg';
const REFRESH_MS = 3000;
const WIDTH = 900;
const HEIGHT = 120;
/** Seconds summed for the "last minute" column. */
const RECENT = 60;

const CHARTS = [
  { id: 'sockets', title: 'Open sockets', gauge: true, series: (s) => ({ open: s.sockets }) },
  { id: 'messages', title: 'Messages per second', series: (s) => s.messages },
  { id: 'logins', title: 'Sign-ins per second', series: (s) => s.logins },
  { id: 'sessions_ended', title: 'Sessions ended per second', series: (s) => s.sessions_ended },
];

const LABELS = {
  open: 'open',
  ok: 'ok',
  success: 'success',
  invalid_credentials: 'invalid credentials',
  forbidden: 'forbidden',
  bad_request: 'bad request',
  unknown_type: 'unknown type',
  rate_limited: 'rate limited',
  unavailable: 'unavailable',
  internal: 'internal',
  error: 'error',
  logout: 'logout',
  admin: 'admin',
  expired: 'expired',
  password_changed: 'password changed',
  disabled: 'disabled',
  deleted: 'deleted',
};

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  el.append(...children);
  return el;
}

const sum = (values) => values.reduce((a, b) => a + b, 0);

/** `points` of a polyline over the chart's box, `top` being the chart's maximum. */
function polyline(values, top) {
  const step = WIDTH / Math.max(1, values.length - 1);
  return values.map((v, i) => `${(i * step).toFixed(1)},${(HEIGHT - (v / top) * HEIGHT).toFixed(1)}`).join(' ');
}

function chart(def, stats) {
  // In the order of LABELS (the server's JSON objects come sorted by name).
  const order = Object.keys(LABELS);
  const rank = (name) => (order.includes(name) ? order.indexOf(name) : order.length);
  const series = Object.entries(def.series(stats)).sort(([a], [b]) => rank(a) - rank(b));
  const top = Math.max(1, ...series.flatMap(([, values]) => values));
  const grid = [0.25, 0.5, 0.75].map((f) => svg('line', { class: 'gridline', x1: 0, x2: WIDTH, y1: HEIGHT * f, y2: HEIGHT * f }));
  const lines = series.map(([name, values]) => svg('polyline', {
    class: `line s-${name}`,
    'data-series': name,
    points: polyline(values, top),
  }));
  const picture = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': `${def.title}, last 15 minutes; highest ${top}`,
  }, ...grid, ...lines);
  const now = (values) => (def.gauge ? values[values.length - 1] ?? 0 : sum(values.slice(-RECENT)));
  const legend = h('table', { class: 'live-legend' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, ''),
      h('th', { scope: 'col' }, def.gauge ? 'now' : 'last min'),
      h('th', { scope: 'col' }, def.gauge ? 'peak' : '15 min'))),
    h('tbody', {}, series.map(([name, values]) => h('tr', { dataset: { series: name } },
      h('th', { scope: 'row' }, h('span', { class: `swatch s-${name}` }), LABELS[name] ?? name),
      h('td', { class: 'now' }, String(now(values))),
      h('td', { class: 'total' }, String(def.gauge ? Math.max(0, ...values) : sum(values)))))));
  return h('figure', { class: 'live-chart', dataset: { chart: def.id } },
    h('figcaption', {}, def.title, h('span', { class: 'hint' }, ` (scale 0–${top})`)),
    h('div', { class: 'live-body' },
      h('div', { class: 'live-plot' }, picture,
        h('div', { class: 'live-axis hint', 'aria-hidden': 'true' }, h('span', {}, '15 min ago'), h('span', {}, 'now'))),
      legend));
}

export function livePanel() {
  let destroyed = false;
  const charts = h('div', { class: 'live-charts', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const status = h('p', { class: 'hint', 'aria-live': 'polite', id: 'admin-live-status' });
  const updated = h('p', { class: 'hint' });
  const instances = h('p', { class: 'hint', id: 'admin-live-instances' });

  const load = async () => {
    try {
      const stats = await tether.rest('GET', '/api/admin/stats');
      if (destroyed) return;
      charts.removeAttribute('aria-busy');
      replace(charts, CHARTS.map((def) => chart(def, stats)));
      instances.textContent = `${stats.instances} instance${stats.instances === 1 ? '' : 's'} reporting; one point per second.`;
      status.textContent = '';
      updatedAt(updated);
    } catch (e) {
      if (!destroyed) status.textContent = describe(e);
    }
  };

  const el = h('article', { class: 'card', 'aria-labelledby': 'admin-live-title', id: 'admin-live' },
    h('h2', { id: 'admin-live-title' }, 'Live'),
    h('div', { class: 'toolbar' }, instances, updated),
    status,
    charts);
  load();
  const stop = autoRefresh(() => load(), REFRESH_MS, el);
  return { el, shown: () => load(), destroy: () => { destroyed = true; stop(); } };
}
