// The browser app, end to end, in Debian's Chromium driven by playwright-core.
//
// Started by tests/api/browser.rs, which runs the real server (SQLite + Redis)
// and creates the users; this script only drives browsers. Each step prints
// "ok"/"FAIL"; screenshots go to $TETHER_ARTIFACTS (one per screen, plus a
// screenshot and the HTML of every open page when a step fails).
//
// Environment: TETHER_URL, TETHER_ADMIN_USER, TETHER_ADMIN_PASSWORD,
// TETHER_USER_A, TETHER_PASSWORD_A, TETHER_USER_B, TETHER_PASSWORD_B,
// TETHER_ARTIFACTS, TETHER_CHROMIUM (default /usr/bin/chromium).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ACTION_TIMEOUT_MS, ADMIN, ALICE, ARTIFACTS, BASE, BOB, REVOCATION_LIMIT_MS, check, sleep,
} from './common.mjs';
import { chromium } from 'playwright-core';

const TOTAL_LIMIT_MS = 110_000; // the Rust test gives the whole run 150 s

const CHROMIUM = process.env.TETHER_CHROMIUM || '/usr/bin/chromium';

const watchdog = setTimeout(() => {
  console.log(`FAIL the browser run took longer than ${TOTAL_LIMIT_MS / 1000} s`);
  process.exit(3);
}, TOTAL_LIMIT_MS);
watchdog.unref();

const pages = new Map(); // name → {page, problems: string[]}

// ---------------------------------------------------------------------------
// Helpers

/** Waits until `locator`'s text contains `expected` (a string or a RegExp). */
async function waitForText(locator, expected, timeout = ACTION_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let last = null;
  for (;;) {
    last = await locator.first().textContent({ timeout: Math.max(1, deadline - Date.now()) }).catch(() => last);
    const hit = expected instanceof RegExp ? expected.test(last ?? '') : (last ?? '').includes(expected);
    if (hit) return last;
    if (Date.now() > deadline) {
      throw new Error(`expected ${locator} to contain ${expected}; last text: ${JSON.stringify(last)}`);
    }
    await sleep(50);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
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
    for (const [who, { page, problems }] of pages) {
      if (page.isClosed()) continue;
      const base = join(ARTIFACTS, `failure-${stepNo}-${slug}-${who}`);
      await page.screenshot({ path: `${base}.png`, fullPage: true }).catch(() => {});
      await page.content().then((html) => writeFile(`${base}.html`, html)).catch(() => {});
      console.log(`     ${who}: ${page.url()}${problems.length ? `; problems: ${problems.join(' | ')}` : ''}`);
    }
    throw error;
  }
}

/** A fresh browser context (its own cookies) with one page, watched for errors. */
async function openPage(browser, who, viewport) {
  const context = await browser.newContext({ viewport, hasTouch: viewport.width < 500 });
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  // Runs before the app's own scripts on every load: flags the sign-in form
  // if it ever appears, and records CSP violations.
  await context.addInitScript(() => {
    window.__signInFormSeen = false;
    window.__cspViolations = [];
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
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Failed requests the test provokes on purpose (401s, an aborted login)
    // are logged by Chromium as console errors; script errors and CSP reports are not that.
    if (m.type() === 'error' && !/Failed to load resource|net::ERR_/.test(m.text())) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  pages.set(who, { page, problems });
  return page;
}

async function signIn(page, user) {
  await page.getByLabel('Username').fill(user.name);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function expectHome(page, user) {
  await page.locator('[data-view="home"]').waitFor();
  await waitForText(page.locator('#me-username'), user.name);
  await page.locator('.badge[data-state="live"]').waitFor();
}

// ---------------------------------------------------------------------------
// The scenarios

await mkdir(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  timeout: 30_000,
  // Playwright adds a fresh temporary --user-data-dir itself. Without the
  // background-networking flags Chromium calls home, and this network refuses.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
});
console.log(`Chromium ${browser.version()} against ${BASE}`);

let failed = false;
try {
  const desktop = { width: 1280, height: 800 };
  const phone = { width: 390, height: 844 };
  const alice = await openPage(browser, 'alice', desktop);
  const admin = await openPage(browser, 'admin', desktop);
  const bob = await openPage(browser, 'bob', phone);

  await step('sign-in screen: CSP header, wrong password, rate limited, server down', async () => {
    const res = await alice.goto(`${BASE}/`);
    const csp = res.headers()['content-security-policy'] ?? '';
    check(csp.includes("default-src 'self'"), `no strict CSP on /: ${JSON.stringify(csp)}`);
    await alice.locator('#signin-form').waitFor();
    await shot(alice, '01-signin');

    await signIn(alice, { name: ALICE.name, password: 'not-the-password' });
    await waitForText(alice.locator('#signin-error'), 'Wrong username or password');

    // The server's 429 contract, answered here so the step does not depend on
    // how many failures the server's limiter allows.
    await alice.route('**/api/auth/login', (route) => route.fulfill({
      status: 429,
      headers: { 'Retry-After': '2', 'Content-Type': 'application/json' },
      body: JSON.stringify({ error: { code: 'rate_limited', message: 'Too many sign-in attempts. Try again in 2 s.' } }),
    }));
    await signIn(alice, ALICE);
    await waitForText(alice.locator('#signin-error'), /Too many sign-in attempts\. Try again in [12] s\./);
    check(await alice.getByRole('button', { name: 'Sign in' }).isDisabled(), 'sign-in button usable while rate limited');
    await shot(alice, '02-signin-rate-limited');
    await waitForText(alice.locator('#signin-error'), 'You can try again now', 5_000);

    await alice.unroute('**/api/auth/login');
    await alice.route('**/api/auth/login', (route) => route.abort('connectionrefused'));
    await signIn(alice, ALICE);
    await waitForText(alice.locator('#signin-error'), 'The server is not answering');
    await alice.unroute('**/api/auth/login');
  });

  await step('sign in', async () => {
    await signIn(alice, ALICE);
    await expectHome(alice, ALICE);
    await shot(alice, '03-home');
  });

  await step('reload keeps you signed in, with no sign-in form on the way', async () => {
    await alice.reload();
    await expectHome(alice, ALICE);
    const flashed = await alice.evaluate(() => window.__signInFormSeen);
    check(flashed === false, 'the sign-in form appeared during the reload');
  });

  await step('deep link: #/admin opened signed out returns there after sign-in', async () => {
    await admin.goto(`${BASE}/#/admin`);
    await admin.locator('#signin-form').waitFor();
    await signIn(admin, ADMIN);
    await admin.locator('[data-view="admin"]').waitFor();
    const hash = await admin.evaluate(() => location.hash);
    check(hash === '#/admin', `after sign-in the hash is ${hash}`);
    await admin.locator(`#admin-users tr[data-username="${ALICE.name}"]`).waitFor();
    await admin.locator('#admin-sessions table').waitFor();
    await shot(admin, '04-admin');
  });

  await step('a plain user asking for the admin message sees "Permission denied"', async () => {
    await alice.locator('button[data-message="messages.public"]').click();
    await waitForText(alice.locator('output[data-message="messages.public"]'), 'Hello, world');
    await alice.locator('button[data-message="messages.protected"]').click();
    await waitForText(alice.locator('output[data-message="messages.protected"]'), `Hello, ${ALICE.name}`);
    await alice.locator('button[data-message="messages.admin"][data-allowed="false"]').click();
    await waitForText(alice.locator('output[data-message="messages.admin"]'), 'Permission denied');
    await shot(alice, '05-home-permission-denied');
  });

  await step("the server's own rate limit: 429 with Retry-After, counted down on the form", async () => {
    await bob.goto(`${BASE}/`);
    const attacker = { name: 'mallory', password: 'guess-guess' };
    for (let attempt = 1; ; attempt += 1) {
      await signIn(bob, attacker);
      const text = await waitForText(bob.locator('#signin-error'), /Wrong username or password|Too many/);
      if (text.includes('Too many')) break;
      check(attempt < 20, 'no 429 after 20 failed sign-ins');
      await bob.getByRole('button', { name: 'Sign in' }).waitFor({ state: 'visible' });
    }
    await waitForText(bob.locator('#signin-error'), /Too many sign-in attempts\. Try again in \d+ (s|min)\./);
    check(await bob.getByRole('button', { name: 'Sign in' }).isDisabled(), 'sign-in button usable while rate limited');
    await shot(bob, '06-signin-rate-limited-phone');
  });

  await step('chat between two browser contexts (the second on a phone-sized window, by keyboard)', async () => {
    await bob.goto(`${BASE}/`); // a fresh form: the lockout above is mallory's, not bob's
    await bob.locator('#signin-form').waitFor();
    // The username field has focus; sign in with the keyboard alone.
    await bob.keyboard.type(BOB.name);
    await bob.keyboard.press('Tab');
    await bob.keyboard.type(BOB.password);
    await bob.keyboard.press('Enter');
    await expectHome(bob, BOB);

    const fromAlice = 'Hi Bob, <b>this is not bold</b> & <script>x()</script>';
    await alice.getByLabel('Message', { exact: true }).fill(fromAlice);
    await alice.getByLabel('Message', { exact: true }).press('Enter');
    await waitForText(bob.locator('.chat-log'), fromAlice);
    check(await bob.locator('.chat-log b, .chat-log script').count() === 0, 'chat text was rendered as HTML');

    await bob.getByLabel('Message', { exact: true }).fill('Hello Alice');
    await bob.getByRole('button', { name: 'Send' }).click();
    await waitForText(alice.locator('.chat-log'), 'Hello Alice');
    await shot(bob, '06-home-phone-chat');
    await shot(alice, '06-home-chat');
  });

  await step('my sessions lists this device', async () => {
    await alice.getByRole('link', { name: 'My sessions' }).click();
    await alice.locator('[data-view="sessions"]').waitFor();
    await waitForText(alice.locator('tr[data-current="true"]'), 'This device');
    await shot(alice, '07-sessions');
    await bob.getByRole('link', { name: 'My sessions' }).click();
    await waitForText(bob.locator('tr[data-current="true"]'), 'This device');
    await shot(bob, '07-sessions-phone');
    await alice.getByRole('link', { name: 'Home' }).click();
    await bob.getByRole('link', { name: 'Home' }).click();
    await expectHome(alice, ALICE);
    await expectHome(bob, BOB);
  });

  await step('a role change enables the admin message in the open page, without reload', async () => {
    await alice.evaluate(() => { window.__notReloaded = true; });
    const row = admin.locator(`#admin-users tr[data-username="${ALICE.name}"]`);
    await row.getByLabel('messages-admin').check();
    await row.getByRole('button', { name: 'Save roles' }).click();
    await waitForText(admin.locator('#admin-users-status'), `Saved the roles of ${ALICE.name}`);

    await alice.locator('button[data-message="messages.admin"][data-allowed="true"]').waitFor();
    await waitForText(alice.locator('#me-roles'), 'messages-admin');
    await alice.locator('button[data-message="messages.admin"]').click();
    await waitForText(alice.locator('output[data-message="messages.admin"]'), 'Admin eyes only');
    check(await alice.evaluate(() => window.__notReloaded) === true, 'the page was reloaded');
    await shot(alice, '08-home-admin-message');
  });

  await step('a connection the server drops comes back by itself (backoff), still signed in', async () => {
    // A frame over TETHER_WS_MAX_MESSAGE_BYTES: the server closes the socket
    // (1009), a close that is not the end of the session. (Chromium's offline
    // emulation leaves open sockets alone, so it cannot stand in for a drop.)
    // "Reconnecting" shows only from the close (the server ends the TCP
    // connection up to 1 s after its close frame) to the next hello, a few
    // hundred ms: too short for polling to be sure to see, so the page's own
    // record of the badge's states is checked instead.
    await alice.evaluate(() => {
      window.__badgeStates = [];
      window.__sockets.at(-1).send('x'.repeat(70_000));
    });
    await alice.waitForFunction(() => window.__badgeStates.includes('reconnecting'));
    await alice.locator('.badge[data-state="live"]').waitFor();
    const states = await alice.evaluate(() => window.__badgeStates);
    check(states[0] === 'reconnecting' && states.at(-1) === 'live', `badge states after the drop: ${states}`);
    const sockets = await alice.evaluate(() => window.__sockets.length);
    check(sockets >= 2, `expected a new socket, the page opened ${sockets}`);
    await alice.locator('button[data-message="messages.protected"]').click();
    await waitForText(alice.locator('output[data-message="messages.protected"]'), `Hello, ${ALICE.name}`);
  });

  await step(`the admin revokes the other context's session; it shows the sign-in screen within ${REVOCATION_LIMIT_MS} ms`, async () => {
    await admin.locator('#admin-session-user').selectOption({ label: BOB.name });
    const rows = admin.locator('#admin-sessions tbody tr');
    await admin.locator(`#admin-sessions tr[data-username="${BOB.name}"]`).waitFor();
    await admin.waitForFunction((name) => [...document.querySelectorAll('#admin-sessions tbody tr')]
      .every((tr) => tr.dataset.username === name), BOB.name);
    check(await rows.count() === 1, `expected one session of ${BOB.name}, saw ${await rows.count()}`);
    await waitForText(rows.locator('.sockets'), '1'); // bob's open page, counted live
    await shot(admin, '09-admin-sessions');

    const started = Date.now();
    const answered = admin.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().includes('/api/admin/sessions/'))
      .then(() => Date.now() - started);
    await rows.getByRole('button', { name: 'Revoke' }).click();
    await waitForText(bob.locator('#signin-notice'), 'Your session was ended', REVOCATION_LIMIT_MS);
    const elapsed = Date.now() - started;
    console.log(`     the DELETE answered after ${await answered} ms`);
    await bob.locator('#signin-form').waitFor({ timeout: 100 });
    await waitForText(bob.locator('#signin-notice'), 'administrator', 100);
    console.log(`     sign-in screen shown ${elapsed} ms after the click`);
    await shot(bob, '10-session-ended-phone');
  });

  await step('the admin screens on a phone-sized window', async () => {
    await admin.setViewportSize({ width: 390, height: 844 });
    await admin.locator('#admin-session-user').selectOption({ label: 'Everyone' });
    await admin.locator(`#admin-sessions tr[data-username="${ALICE.name}"]`).waitFor();
    await shot(admin, '11-admin-phone');
  });

  await step('sign out', async () => {
    await alice.getByRole('button', { name: 'Sign out' }).click();
    await waitForText(alice.locator('#signin-notice'), 'You have signed out');
    await alice.reload();
    await alice.locator('#signin-form').waitFor();
    await shot(alice, '12-signed-out');
  });

  await step('nothing stored, no CSP violations, no script errors', async () => {
    for (const [who, { page, problems }] of pages) {
      const stored = await page.evaluate(() => localStorage.length + sessionStorage.length);
      check(stored === 0, `${who}: ${stored} entries in local/session storage`);
      const csp = await page.evaluate(() => window.__cspViolations);
      check(csp.length === 0, `${who}: CSP violations: ${csp.join(', ')}`);
      check(problems.length === 0, `${who}: ${problems.join(' | ')}`);
    }
  });
} catch {
  failed = true;
} finally {
  await browser.close().catch(() => {});
}
console.log(failed ? 'browser run FAILED' : 'browser run passed');
process.exit(failed ? 1 : 0);
