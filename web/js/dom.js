// Building DOM without HTML strings: every piece of data becomes a text node
// or an attribute value, never markup, so user-provided text cannot inject.

/**
 * h('button', {class: 'x', onclick: fn}, 'Label', child…) → HTMLElement.
 * Attributes: `class`, `dataset` (object), `on<event>` (function),
 * `true` for a boolean attribute, `false`/`null`/`undefined` to omit.
 * Children: nodes, strings (as text), arrays, or null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'style') {
      throw new Error('inline styles are refused by the CSP; use a class');
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

let uid = 0;
/** A document-unique id, for label/aria-describedby pairs. */
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** "12 s ago", "3 min ago", … for an RFC 3339 time; the exact time is the title. */
export function ago(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '—';
  const secs = Math.round((Date.now() - then) / 1000);
  if (secs < 5) return 'just now';
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return new Date(then).toLocaleDateString();
}

/** "in 5 min", … for a future RFC 3339 time. */
export function until(iso) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '—';
  const secs = Math.round((then - Date.now()) / 1000);
  if (secs <= 0) return 'now';
  if (secs < 60) return `in ${secs} s`;
  if (secs < 3600) return `in ${Math.ceil(secs / 60)} min`;
  return `in ${Math.round(secs / 360) / 10} h`;
}

/** A <time> element showing `text`, with the full local time as its title. */
export function timeEl(iso, text) {
  const d = new Date(iso);
  return h('time', { datetime: iso, title: Number.isNaN(d.getTime()) ? null : d.toLocaleString() }, text);
}

/** A short name for a User-Agent string: "Chrome 126 on Linux". */
export function browserName(ua) {
  if (!ua) return 'Unknown client';
  const pick = (re) => ua.match(re);
  let name;
  let m;
  if ((m = pick(/Firefox\/(\d+)/))) name = `Firefox ${m[1]}`;
  else if ((m = pick(/Edg\/(\d+)/))) name = `Edge ${m[1]}`;
  else if ((m = pick(/HeadlessChrome\/(\d+)/))) name = `Chrome ${m[1]} (headless)`;
  else if ((m = pick(/(?:Chrome|Chromium)\/(\d+)/))) name = `Chrome ${m[1]}`;
  else if ((m = pick(/Version\/(\d+).*Safari\//))) name = `Safari ${m[1]}`;
  else if ((m = pick(/^([\w.-]+)\/([\w.]+)/))) name = `${m[1]} ${m[2]}`;
  else name = 'Unknown client';
  const os = /Android/.test(ua) ? 'Android'
    : /iPhone|iPad/.test(ua) ? 'iOS'
      : /Windows/.test(ua) ? 'Windows'
        : /Mac OS X/.test(ua) ? 'macOS'
          : /Linux/.test(ua) ? 'Linux' : null;
  return os ? `${name} on ${os}` : name;
}
