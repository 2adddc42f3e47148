// What every browser driver shares with the scenario: the environment
// tests/api/browser.rs passes, the time limits, the script each page runs
// before the app's own, the step runner (its "ok"/"FAIL" lines and failure
// artifacts), the waits written on top of the page interface, and the admin
// REST API from node.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const ACTION_TIMEOUT_MS = 10_000;
export const REVOCATION_LIMIT_MS = 2_000;

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export const BASE = env('TETHER_URL');
export const ADMIN = { name: env('TETHER_ADMIN_USER'), password: env('TETHER_ADMIN_PASSWORD') };
export const ALICE = { name: env('TETHER_USER_A'), password: env('TETHER_PASSWORD_A') };
export const BOB = { name: env('TETHER_USER_B'), password: env('TETHER_PASSWORD_B') };
export const ARTIFACTS = env('TETHER_ARTIFACTS');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/**
 * Runs in every page before the app's own scripts, on every load (each driver
 * installs it: Chromium as an init script, Firefox as a BiDi preload script).
 * Self-contained: it is sent to the browser as source text.
 */
export function watchPage() {
  // Flags the sign-in form if it ever appears.
  window.__signInFormSeen = false;
  new MutationObserver(() => {
    if (!window.__signInFormSeen && document.getElementById('signin-form')) window.__signInFormSeen = true;
  }).observe(document, { childList: true, subtree: true });
  // Every state the connection badge shows, however briefly.
  window.__badgeStates = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.target.classList?.contains('badge')) window.__badgeStates.push(change.target.dataset.state);
    }
  }).observe(document, { attributes: true, attributeFilter: ['data-state'], subtree: true });
  // Keep a handle on the page's sockets, so a step can drop one.
  const NativeWebSocket = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
    }
  };
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
}

/**
 * The admin REST API, from node: signs in once and keeps the cookie.
 * Returns `api(method, path, body?)` → the fetch Response.
 */
export async function adminApi() {
  const res = await fetch(`${BASE}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: ADMIN.name, password: ADMIN.password }),
    signal: AbortSignal.timeout(ACTION_TIMEOUT_MS),
  });
  check(res.status === 200, `admin sign-in: HTTP ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  check(cookie.includes('tether_session='), 'admin sign-in set no tether_session cookie');
  return (method, path, body) => fetch(`${BASE}${path}`, {
    method,
    headers: body === undefined ? { Cookie: cookie } : { Cookie: cookie, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(ACTION_TIMEOUT_MS),
  });
}

/** Polls `probe()` until it returns something truthy; returns that. */
export async function waitUntil(what, probe, timeout = ACTION_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Polls `fn(arg)` in the page until it returns something truthy; returns that. */
export function waitInPage(page, what, fn, arg, timeout = ACTION_TIMEOUT_MS) {
  return waitUntil(what, () => page.eval(fn, arg), timeout);
}

/** Waits until the first `target`'s text contains `expected` (a string or a RegExp). */
export async function waitForText(page, target, expected, timeout = ACTION_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let last = null;
  for (;;) {
    last = await page.text(target).catch(() => last);
    const hit = expected instanceof RegExp ? expected.test(last ?? '') : (last ?? '').includes(expected);
    if (hit) return last;
    if (Date.now() > deadline) {
      throw new Error(`expected ${JSON.stringify(target)} to contain ${expected}; last text: ${JSON.stringify(last)}`);
    }
    await sleep(25);
  }
}

/**
 * Starts the driver and runs `scenario(driver, { step, shot, open, pages })`:
 * prints "ok"/"FAIL" per step, writes screenshots (named with the driver's
 * prefix) and, when a step fails, a screenshot and the HTML of every open
 * page; ends the process (0 passed, 1 failed, 3 over the driver's time limit).
 */
export async function runScenario(driver, scenario) {
  const watchdog = setTimeout(async () => {
    console.log(`FAIL the ${driver.runName} took longer than ${driver.limitMs / 1000} s`);
    await Promise.race([driver.close(), sleep(3_000)]);
    process.exit(3);
  }, driver.limitMs);
  watchdog.unref();
  await mkdir(ARTIFACTS, { recursive: true });
  const pages = new Map(); // who → page
  const file = (name) => join(ARTIFACTS, `${driver.artifactPrefix}${name}`);
  const shot = (page, name) => page.screenshot(file(`${name}.png`));

  let stepNo = 0;
  /** One step; `onlyOn` = { [driver.name]: why the others cannot run it } marks a one-browser step. */
  const step = async (name, fn, { onlyOn } = {}) => {
    stepNo += 1;
    if (onlyOn && !(driver.name in onlyOn)) {
      const [[browser, why]] = Object.entries(onlyOn);
      console.log(`skip ${stepNo}. ${name}: ${browser} only, ${why}`);
      return;
    }
    const started = Date.now();
    try {
      await fn();
      console.log(`ok   ${stepNo}. ${name} (${Date.now() - started} ms)`);
    } catch (error) {
      console.log(`FAIL ${stepNo}. ${name} (${Date.now() - started} ms)\n${error.stack ?? error}`);
      const slug = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 40).replace(/-+$/, '');
      for (const [who, page] of pages) {
        const base = file(`failure-${stepNo}-${slug}-${who}`);
        await page.screenshot(`${base}.png`).catch(() => {});
        await page.html().then((html) => writeFile(`${base}.html`, html)).catch(() => {});
        const url = await page.url().catch(() => '?');
        const { problems } = page;
        console.log(`     ${who}: ${url}${problems.length ? `; problems: ${problems.join(' | ')}` : ''}`);
      }
      throw error instanceof Error ? Object.assign(error, { reported: true }) : error;
    }
  };

  let failed = false;
  try {
    await driver.start();
    const open = async (who, size) => {
      const page = await driver.open(who, size);
      pages.set(who, page);
      return page;
    };
    await scenario(driver, { step, shot, open, pages });
  } catch (error) {
    if (!error?.reported) console.log(`FAIL ${error?.stack ?? error}`);
    failed = true;
  } finally {
    await Promise.race([driver.close(), sleep(10_000)]);
  }
  console.log(`${driver.runName} ${failed ? 'FAILED' : 'passed'}`);
  process.exit(failed ? 1 : 0);
}
