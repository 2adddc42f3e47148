// The browser app, end to end, in Debian's Firefox ESR driven over WebDriver
// (selenium-webdriver → geckodriver → /usr/bin/firefox-esr, headless).
//
// Playwright drives only its own patched Firefox build, which cannot be
// downloaded here, so this is the Firefox twin of run.mjs, over the W3C
// protocol instead: WebDriver classic for the clicks, WebDriver BiDi for what
// classic cannot do (a script that runs before the app's own on every load,
// and the page's script errors and console).
//
// Started by tests/api/browser.rs, which runs the real server (SQLite + Redis)
// and creates the users. Two Firefox instances, each with a fresh temporary
// profile: alice in a desktop-sized window, bob in a narrow one (500 px,
// Firefox's narrowest; the app's narrow layout). Each step
// prints "ok"/"FAIL"; screenshots go to $TETHER_ARTIFACTS/firefox-*.png (one
// per screen, plus a screenshot and the HTML of every open window when a step
// fails).
//
// Environment: TETHER_URL, TETHER_ADMIN_USER, TETHER_ADMIN_PASSWORD,
// TETHER_USER_A, TETHER_PASSWORD_A, TETHER_USER_B, TETHER_PASSWORD_B,
// TETHER_ARTIFACTS, TETHER_FIREFOX (default /usr/bin/firefox-esr),
// TETHER_GECKODRIVER (default: geckodriver on PATH).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ACTION_TIMEOUT_MS, ADMIN, ALICE, ARTIFACTS, BASE, BOB, REVOCATION_LIMIT_MS, check, sleep,
} from './common.mjs';
import { Builder } from 'selenium-webdriver';
import firefox from 'selenium-webdriver/firefox.js';
import getScriptManager from 'selenium-webdriver/bidi/scriptManager.js';
import getLogInspector from 'selenium-webdriver/bidi/logInspector.js';

const TOTAL_LIMIT_MS = 75_000; // the Rust test gives the whole run 100 s
const START_LIMIT_MS = 40_000; // geckodriver + Firefox start, per browser

const FIREFOX = process.env.TETHER_FIREFOX || '/usr/bin/firefox-esr';
const GECKODRIVER = process.env.TETHER_GECKODRIVER || 'geckodriver';

const browsers = new Map(); // name → {driver, problems: string[]}

const watchdog = setTimeout(async () => {
  console.log(`FAIL the Firefox run took longer than ${TOTAL_LIMIT_MS / 1000} s`);
  await Promise.race([quitAll(), sleep(3_000)]);
  process.exit(3);
}, TOTAL_LIMIT_MS);
watchdog.unref();

// ---------------------------------------------------------------------------
// Helpers

/** Runs `fn(...args)` in the page and returns its value (a function, not a string of code). */
function inPage(driver, fn, ...args) {
  return driver.executeScript(`return (${fn}).apply(null, arguments)`, ...args);
}

/** Polls the page until `probe(...args)` returns something truthy; returns it. */
async function waitUntil(driver, what, probe, args = [], timeout = ACTION_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await inPage(driver, probe, ...args).catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Waits until an element matching `css` exists. */
function waitFor(driver, css, timeout) {
  return waitUntil(driver, css, (sel) => !!document.querySelector(sel), [css], timeout);
}

/** Waits until the first `css` element's text contains `expected` (a string or a RegExp). */
async function waitForText(driver, css, expected, timeout = ACTION_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let last = null;
  for (;;) {
    last = await inPage(driver, (sel) => document.querySelector(sel)?.textContent ?? null, css).catch(() => last);
    const hit = expected instanceof RegExp ? expected.test(last ?? '') : (last ?? '').includes(expected);
    if (hit) return last;
    if (Date.now() > deadline) {
      throw new Error(`expected ${css} to contain ${expected}; last text: ${JSON.stringify(last)}`);
    }
    await sleep(25);
  }
}

/** Clicks the first element matching `css`, as a user would (WebDriver's element click). */
async function click(driver, css) {
  await waitFor(driver, css);
  await (await driver.findElement({ css })).click();
}

/** Clicks the button whose text is `label` (as a user finds it). */
async function clickButton(driver, label) {
  const find = (text) => [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === text);
  await waitUntil(driver, `a "${label}" button`, find, [label]);
  await (await inPage(driver, find, label)).click();
}

/** Types into the field matching `css` (after clearing it). */
async function type(driver, css, text) {
  await waitFor(driver, css);
  const field = await driver.findElement({ css });
  await field.clear();
  await field.sendKeys(text);
}

async function shot(driver, name) {
  const png = await driver.takeFullPageScreenshot().catch(() => driver.takeScreenshot());
  await writeFile(join(ARTIFACTS, `firefox-${name}.png`), png, 'base64');
}

let stepNo = 0;
async function step(name, fn) {
  stepNo += 1;
  const started = Date.now();
  try {
    await fn();
    console.log(`ok   ${stepNo}. ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    console.log(`FAIL ${stepNo}. ${name} (${Date.now() - started} ms)\n${error.stack ?? error}`);
    const slug = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 40).replace(/-+$/, '');
    for (const [who, { driver, problems }] of browsers) {
      const base = join(ARTIFACTS, `firefox-failure-${stepNo}-${slug}-${who}`);
      await shot(driver, `failure-${stepNo}-${slug}-${who}`).catch(() => {});
      await driver.getPageSource().then((html) => writeFile(`${base}.html`, html)).catch(() => {});
      const url = await driver.getCurrentUrl().catch(() => '?');
      console.log(`     ${who}: ${url}${problems.length ? `; problems: ${problems.join(' | ')}` : ''}`);
    }
    throw error;
  }
}

/**
 * Starts a Firefox with a fresh profile (geckodriver makes a temporary one),
 * with its own geckodriver, and the BiDi hooks every page load gets.
 */
async function openFirefox(who, { width, height }) {
  const options = new firefox.Options()
    .setBinary(FIREFOX)
    .addArguments('-headless', `--width=${width}`, `--height=${height}`)
    .enableBidi();
  // Keep Firefox off the network beyond 127.0.0.1 (this machine's network
  // refuses everything else); geckodriver already turns off updates and telemetry.
  for (const [pref, value] of Object.entries({
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'browser.safebrowsing.malware.enabled': false,
    'browser.safebrowsing.phishing.enabled': false,
    'browser.safebrowsing.downloads.enabled': false,
    'browser.safebrowsing.update.enabled': false,
    'extensions.getAddons.cache.enabled': false,
    'browser.region.network.url': '',
    'browser.topsites.contile.enabled': false,
    'network.dns.disablePrefetch': true,
    'network.prefetch-next': false,
  })) {
    options.setPreference(pref, value);
  }
  const service = new firefox.ServiceBuilder(GECKODRIVER);
  const driver = await Promise.race([
    new Builder().forBrowser('firefox').setFirefoxOptions(options).setFirefoxService(service).build(),
    sleep(START_LIMIT_MS).then(() => { throw new Error(`${who}: Firefox did not start within ${START_LIMIT_MS / 1000} s`); }),
  ]);
  const problems = [];
  browsers.set(who, { driver, problems });
  await driver.manage().setTimeouts({ implicit: 0, pageLoad: ACTION_TIMEOUT_MS, script: ACTION_TIMEOUT_MS });

  // Runs before the app's own scripts on every load: flags the sign-in form if
  // it ever appears, and records CSP violations.
  const scripts = await getScriptManager([], driver);
  await scripts.addPreloadScript(`() => {
    window.__signInFormSeen = false;
    window.__cspViolations = [];
    new MutationObserver(() => {
      if (!window.__signInFormSeen && document.getElementById('signin-form')) window.__signInFormSeen = true;
    }).observe(document, { childList: true, subtree: true });
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
    });
  }`);
  const logs = await getLogInspector(driver);
  await logs.onJavascriptException((e) => problems.push(`script error: ${e.text}`));
  await logs.onConsoleEntry((e) => {
    if (e.level === 'error') problems.push(`console error: ${e.text}`);
  });
  const caps = await driver.getCapabilities();
  const [innerWidth, innerHeight] = await inPage(driver, () => [window.innerWidth, window.innerHeight]);
  console.log(`${who}: ${caps.get('browserName')} ${caps.get('browserVersion')}, window ${width}×${height}, viewport ${innerWidth}×${innerHeight}`);
  return driver;
}

async function quitAll() {
  await Promise.all([...browsers.values()].map(({ driver }) => driver.quit().catch(() => {})));
}

async function signIn(driver, user) {
  await type(driver, '#signin-username', user.name);
  await type(driver, '#signin-password', user.password);
  await click(driver, '#signin-form button[type="submit"]');
}

async function expectHome(driver, user) {
  await waitFor(driver, '[data-view="home"]');
  await waitForText(driver, '#me-username', user.name);
  await waitFor(driver, '.badge[data-state="live"]');
  await waitForText(driver, '.badge', 'Live');
}

/** The admin REST API, from node: signs in once and keeps the cookie. */
async function adminApi() {
  const res = await fetch(`${BASE}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: ADMIN.name, password: ADMIN.password }),
  });
  check(res.status === 200, `admin sign-in: HTTP ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  check(cookie.includes('tether_session='), 'admin sign-in set no tether_session cookie');
  return (method, path) => fetch(`${BASE}${path}`, {
    method,
    headers: { Cookie: cookie },
    signal: AbortSignal.timeout(ACTION_TIMEOUT_MS),
  });
}

// ---------------------------------------------------------------------------
// The scenarios

await mkdir(ARTIFACTS, { recursive: true });
let failed = false;
try {
  let alice;
  let bob;
  await step('start two headless Firefox instances (fresh profiles)', async () => {
    [alice, bob] = await Promise.all([
      openFirefox('alice', { width: 1280, height: 800 }),
      // Firefox will not make a window narrower than 500 px; the app's
      // narrow layout starts at 700.
      openFirefox('bob', { width: 500, height: 844 }),
    ]);
    const [width] = await inPage(bob, () => [innerWidth]);
    check(width <= 700, `bob's window is ${width} px wide, too wide for the narrow layout`);
  });

  await step('sign in', async () => {
    await alice.get(`${BASE}/`);
    await waitFor(alice, '#signin-form');
    await shot(alice, '01-signin');
    await signIn(alice, ALICE);
    await expectHome(alice, ALICE);
    await shot(alice, '02-home');
  });

  await step('reload keeps you signed in, with no sign-in form on the way; the socket is live again', async () => {
    await inPage(alice, () => { window.__beforeReload = true; });
    await alice.navigate().refresh();
    await waitUntil(alice, 'the reloaded page', () => window.__beforeReload === undefined);
    await expectHome(alice, ALICE);
    const flashed = await inPage(alice, () => window.__signInFormSeen);
    check(flashed === false, `the sign-in form appeared during the reload (flag: ${flashed})`);
  });

  await step('a plain user asking for the admin message sees "Permission denied"', async () => {
    await click(alice, 'button[data-message="messages.public"]');
    await waitForText(alice, 'output[data-message="messages.public"]', 'Hello, world');
    await click(alice, 'button[data-message="messages.admin"][data-allowed="false"]');
    await waitForText(alice, 'output[data-message="messages.admin"]', 'Permission denied');
    await shot(alice, '03-home-permission-denied');
  });

  await step('chat between two Firefox instances (the second in a narrow window)', async () => {
    await bob.get(`${BASE}/`);
    await waitFor(bob, '#signin-form');
    await signIn(bob, BOB);
    await expectHome(bob, BOB);

    const fromAlice = 'Hi Bob, <b>this is not bold</b> & <script>x()</script>';
    await type(alice, '#chat-text', fromAlice);
    await (await alice.findElement({ css: '#chat-text' })).sendKeys('\uE007'); // Enter
    await waitForText(bob, '.chat-log', fromAlice);
    const html = await inPage(bob, () => document.querySelectorAll('.chat-log b, .chat-log script').length);
    check(html === 0, 'chat text was rendered as HTML');

    await type(bob, '#chat-text', 'Hello Alice, from a narrow Firefox');
    await clickButton(bob, 'Send');
    await waitForText(alice, '.chat-log', 'Hello Alice, from a narrow Firefox');
    await shot(alice, '04-home-chat');
    await shot(bob, '04-home-chat-narrow');
  });

  await step(`an admin revokes bob's session over the REST API; his Firefox shows the sign-in screen within ${REVOCATION_LIMIT_MS} ms`, async () => {
    const api = await adminApi();
    const res = await api('GET', '/api/admin/sessions?per_page=200');
    check(res.status === 200, `GET /api/admin/sessions: HTTP ${res.status}`);
    const mine = (await res.json()).sessions.filter((s) => s.username === BOB.name);
    check(mine.length === 1, `expected one session of ${BOB.name}, saw ${mine.length}`);
    const [session] = mine;
    check(/Firefox/.test(session.user_agent ?? ''), `bob's session is not Firefox's: ${session.user_agent}`);
    check(session.sockets >= 1, `bob's open page has no socket counted (sockets: ${session.sockets})`);

    const started = Date.now();
    const deleted = api('DELETE', `/api/admin/sessions/${session.id}`).then((r) => ({ status: r.status, ms: Date.now() - started }));
    await waitForText(bob, '#signin-notice', 'Your session was ended', REVOCATION_LIMIT_MS);
    const elapsed = Date.now() - started;
    const { status, ms } = await deleted;
    check(status === 204, `DELETE /api/admin/sessions/{id}: HTTP ${status}`);
    await waitFor(bob, '#signin-form', 100);
    await waitForText(bob, '#signin-notice', 'administrator', 100);
    console.log(`     the DELETE answered after ${ms} ms; the sign-in screen was shown ${elapsed} ms after it was sent`);
    await shot(bob, '05-session-ended-narrow');
  });

  await step('sign out', async () => {
    await clickButton(alice, 'Sign out');
    await waitForText(alice, '#signin-notice', 'You have signed out');
    await shot(alice, '06-signed-out');
    await alice.navigate().refresh();
    await waitFor(alice, '#signin-form');
    // The control for the reload step's check: signed out, the watch does see the form.
    check(await inPage(alice, () => window.__signInFormSeen) === true, 'the sign-in form watch missed the form');
    const me = await inPage(alice, () => fetch('/api/auth/me').then((r) => r.status));
    check(me === 401, `after sign-out GET /api/auth/me answers ${me}`);
  });

  await step('nothing stored, no CSP violations, no script errors', async () => {
    for (const [who, { driver, problems }] of browsers) {
      const stored = await inPage(driver, () => localStorage.length + sessionStorage.length);
      check(stored === 0, `${who}: ${stored} entries in local/session storage`);
      const csp = await inPage(driver, () => window.__cspViolations);
      check(Array.isArray(csp), `${who}: the preload script did not run (no CSP record)`);
      check(csp.length === 0, `${who}: CSP violations: ${csp.join(', ')}`);
      check(problems.length === 0, `${who}: ${problems.join(' | ')}`);
    }
  });

  await step('control: the watches above do see a script error and a CSP violation', async () => {
    const { problems } = browsers.get('alice');
    await inPage(alice, () => {
      setTimeout(() => { throw new Error('deliberate probe error'); });
      const inline = document.createElement('script');
      inline.textContent = 'window.__inlineRan = true;';
      document.head.append(inline);
    });
    await waitUntil(alice, 'the CSP violation event', () => window.__cspViolations.length > 0);
    const ran = await inPage(alice, () => window.__inlineRan === true);
    check(!ran, 'an inline script ran despite the CSP');
    const deadline = Date.now() + 5_000;
    while (!problems.some((p) => p.includes('deliberate probe error'))) {
      check(Date.now() < deadline, `the script error was not reported over BiDi; saw: ${problems.join(' | ')}`);
      await sleep(50);
    }
    console.log(`     seen: ${await inPage(alice, () => window.__cspViolations.join(', '))}; ${problems.join(' | ')}`);
  });
} catch {
  failed = true;
} finally {
  await Promise.race([quitAll(), sleep(10_000)]);
}
console.log(failed ? 'Firefox run FAILED' : 'Firefox run passed');
process.exit(failed ? 1 : 0);
