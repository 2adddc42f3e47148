// The browser app end to end, written once: every step below runs in each
// browser, through a driver that implements the page interface
// (chromium.mjs: Debian's Chromium via playwright-core; firefox.mjs: Debian's
// Firefox ESR via selenium-webdriver and geckodriver). A step that one browser
// cannot run says so with `onlyOn` and the reason; today none needs to.
//
// Started by tests/api/browser.rs, which runs the real server (SQLite + Redis)
// and creates the users; the scenario only drives browsers, and asks the admin
// REST API (from node) what the server sees. Near the end, the steps of
// client-module.mjs drive tether-client.js directly in one of the pages.
//
// The page interface. A target is a CSS selector, or { label }, { button } or
// { link } with the exact visible text, optionally { within: css } as well; an
// action on a target waits (up to ACTION_TIMEOUT_MS) for it to be visible.
//   goto(url) → { status, headers }      the document's response (headers lower-case)
//   reload()                             and wait for the load
//   waitFor(target, timeout?)            until visible
//   text(target) → string | null         textContent of the first match, now
//   count(target) → number
//   isDisabled(target) → boolean
//   fill(target, text), click(target), check(target), select(target, optionText)
//   type(text), press(key, target?)      the keyboard, to the focused element
//                                        (or to target); keys 'Tab', 'Enter'
//   eval(fn, arg) → value                fn(arg) in the page, awaited
//   resize({ width, height })
//   mock(path, answer | null)            answer requests for BASE + path with
//                                        { status, headers, body } or { refuse: true }
//                                        (connection refused); null ends it
//   nextResponse(method, pathPrefix) → Promise<{ status }>  the next such response
//   screenshot(file), html(), url()
//   problems: string[]                   the page's script errors and console errors
// A driver: { name, runName (for the last line), artifactPrefix, limitMs,
// userAgent (a RegExp its sessions' User-Agent matches), start(),
// open(who, { width, height }) → page, close() }; common.mjs runs it.

import {
  ACTION_TIMEOUT_MS, ADMIN, ALICE, BASE, BOB, REVOCATION_LIMIT_MS, adminApi, check, waitForText, waitInPage, waitUntil,
} from './common.mjs';
import { clientModuleSteps } from './client-module.mjs';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** The app's narrow layout starts at this width. */
const NARROW_LAYOUT_PX = 700;

async function signIn(page, user) {
  await page.fill({ label: 'Username' }, user.name);
  await page.fill({ label: 'Password' }, user.password);
  await page.click({ button: 'Sign in' });
}

async function expectHome(page, user) {
  await page.waitFor('[data-view="home"]');
  await waitForText(page, '#me-username', user.name);
  await page.waitFor('.badge[data-state="live"]');
  await waitForText(page, '.badge', 'Live');
}

/** The steps, in order; `open` starts a page with its own cookies. */
export async function scenario(driver, { step, shot, open, pages }) {
  let alice;
  let admin;
  let bob;
  await step('open three pages with their own cookies: alice and admin desktop-sized, bob narrow', async () => {
    [alice, admin, bob] = await Promise.all([open('alice', DESKTOP), open('admin', DESKTOP), open('bob', PHONE)]);
    const width = await bob.eval(() => innerWidth);
    check(width <= NARROW_LAYOUT_PX, `bob's window is ${width} px wide, too wide for the narrow layout`);
  });

  await step('sign-in screen: CSP header, wrong password, rate limited, server down', async () => {
    const { headers } = await alice.goto(`${BASE}/`);
    const csp = headers['content-security-policy'] ?? '';
    check(csp.includes("default-src 'self'"), `no strict CSP on /: ${JSON.stringify(csp)}`);
    await alice.waitFor('#signin-form');
    await shot(alice, '01-signin');

    await signIn(alice, { name: ALICE.name, password: 'not-the-password' });
    await waitForText(alice, '#signin-error', 'Wrong username or password');

    // The server's 429 contract, answered here so the step does not depend on
    // how many failures the server's limiter allows.
    await alice.mock('/api/auth/login', {
      status: 429,
      headers: { 'Retry-After': '2', 'Content-Type': 'application/json' },
      body: JSON.stringify({ error: { code: 'rate_limited', message: 'Too many sign-in attempts. Try again in 2 s.' } }),
    });
    await signIn(alice, ALICE);
    await waitForText(alice, '#signin-error', /Too many sign-in attempts\. Try again in [12] s\./);
    check(await alice.isDisabled({ button: 'Sign in' }), 'sign-in button usable while rate limited');
    await shot(alice, '02-signin-rate-limited');
    await waitForText(alice, '#signin-error', 'You can try again now', 5_000);

    await alice.mock('/api/auth/login', { refuse: true });
    await signIn(alice, ALICE);
    await waitForText(alice, '#signin-error', 'The server is not answering');
    await alice.mock('/api/auth/login', null);
  });

  await step('sign in', async () => {
    await signIn(alice, ALICE);
    await expectHome(alice, ALICE);
    await shot(alice, '03-home');
  });

  await step('reload keeps you signed in, with no sign-in form on the way; the socket is live again', async () => {
    await alice.eval(() => { window.__beforeReload = true; });
    await alice.reload();
    await waitInPage(alice, 'the reloaded page', () => window.__beforeReload === undefined);
    await expectHome(alice, ALICE);
    const flashed = await alice.eval(() => window.__signInFormSeen);
    check(flashed === false, `the sign-in form appeared during the reload (flag: ${flashed})`);
  });

  await step('deep link: #/admin opened signed out returns there after sign-in', async () => {
    await admin.goto(`${BASE}/#/admin`);
    await admin.waitFor('#signin-form');
    await signIn(admin, ADMIN);
    await admin.waitFor('[data-view="admin"]');
    const hash = await admin.eval(() => location.hash);
    check(hash === '#/admin', `after sign-in the hash is ${hash}`);
    // One tab at a time: Users first.
    await admin.waitFor('#admin-tab-users[aria-selected="true"]');
    await admin.waitFor(`#admin-users tr[data-username="${ALICE.name}"]`);
    check(await admin.eval(() => document.querySelector('#admin-tabpanel-sessions').hidden),
      'the Sessions tab is shown beside Users');
    await admin.click('#admin-tab-sessions');
    await admin.waitFor('#admin-sessions table');
    check(await admin.eval(() => document.querySelector('#admin-tabpanel-users').hidden),
      'the Users tab is still shown');
    await shot(admin, '04-admin');
  });

  await step('a plain user asking for the admin message sees "Permission denied"', async () => {
    await alice.click('button[data-message="messages.public"]');
    await waitForText(alice, 'output[data-message="messages.public"]', 'Hello, world');
    await alice.click('button[data-message="messages.protected"]');
    await waitForText(alice, 'output[data-message="messages.protected"]', `Hello, ${ALICE.name}`);
    await alice.click('button[data-message="messages.admin"][data-allowed="false"]');
    await waitForText(alice, 'output[data-message="messages.admin"]', 'Permission denied');
    await shot(alice, '05-home-permission-denied');
  });

  await step("the server's own rate limit: 429 with Retry-After, counted down on the form", async () => {
    await bob.goto(`${BASE}/`);
    const attacker = { name: 'mallory', password: 'guess-guess' };
    for (let attempt = 1; ; attempt += 1) {
      await signIn(bob, attacker);
      const text = await waitForText(bob, '#signin-error', /Wrong username or password|Too many/);
      if (text.includes('Too many')) break;
      check(attempt < 20, 'no 429 after 20 failed sign-ins');
      await bob.waitFor({ button: 'Sign in' });
    }
    await waitForText(bob, '#signin-error', /Too many sign-in attempts\. Try again in \d+ (s|min)\./);
    check(await bob.isDisabled({ button: 'Sign in' }), 'sign-in button usable while rate limited');
    await shot(bob, '06-signin-rate-limited-phone');
  });

  await step('chat between two pages (the second in a narrow window, signed in by keyboard)', async () => {
    await bob.goto(`${BASE}/`); // a fresh form: the lockout above is mallory's, not bob's
    await bob.waitFor('#signin-form');
    // The username field has focus; sign in with the keyboard alone.
    await bob.type(BOB.name);
    await bob.press('Tab');
    await bob.type(BOB.password);
    await bob.press('Enter');
    await expectHome(bob, BOB);

    const fromAlice = 'Hi Bob, <b>this is not bold</b> & <script>x()</script>';
    await alice.fill({ label: 'Message' }, fromAlice);
    await alice.press('Enter', { label: 'Message' });
    await waitForText(bob, '.chat-log', fromAlice);
    check(await bob.count('.chat-log b, .chat-log script') === 0, 'chat text was rendered as HTML');

    await bob.fill({ label: 'Message' }, 'Hello Alice, from a narrow window');
    await bob.click({ button: 'Send' });
    await waitForText(alice, '.chat-log', 'Hello Alice, from a narrow window');
    await shot(bob, '07-home-phone-chat');
    await shot(alice, '07-home-chat');
  });

  await step('my sessions lists this device', async () => {
    await alice.click({ link: 'My sessions' });
    await alice.waitFor('[data-view="sessions"]');
    await waitForText(alice, 'tr[data-current="true"]', 'This device');
    await shot(alice, '08-sessions');
    await bob.click({ link: 'My sessions' });
    await waitForText(bob, 'tr[data-current="true"]', 'This device');
    await shot(bob, '08-sessions-phone');
    await alice.click({ link: 'Home' });
    await bob.click({ link: 'Home' });
    await expectHome(alice, ALICE);
    await expectHome(bob, BOB);
  });

  await step('a role change enables the admin message in the open page, without reload', async () => {
    await alice.eval(() => { window.__notReloaded = true; });
    await admin.click('#admin-tab-users');
    const row = `#admin-users tr[data-username="${ALICE.name}"]`;
    await admin.check({ label: 'messages-admin', within: row });
    await admin.click({ button: 'Save roles', within: row });
    await waitForText(admin, '#admin-users-status', `Saved the roles of ${ALICE.name}`);

    await alice.waitFor('button[data-message="messages.admin"][data-allowed="true"]');
    await waitForText(alice, '#me-roles', 'messages-admin');
    await alice.click('button[data-message="messages.admin"]');
    await waitForText(alice, 'output[data-message="messages.admin"]', 'Admin eyes only');
    check(await alice.eval(() => window.__notReloaded) === true, 'the page was reloaded');
    await shot(alice, '09-home-admin-message');
  });

  await step('a connection the server drops comes back by itself (backoff), still signed in', async () => {
    // A frame over TETHER_WS_MAX_MESSAGE_BYTES: the server closes the socket
    // (1009), a close that is not the end of the session. (Chromium's offline
    // emulation leaves open sockets alone, so it cannot stand in for a drop.)
    // "Reconnecting" shows only from the close (the server ends the TCP
    // connection up to 1 s after its close frame) to the next hello, a few
    // hundred ms: too short for polling to be sure to see, so the page's own
    // record of the badge's states is checked instead.
    await alice.eval(() => {
      window.__badgeStates = [];
      window.__sockets.at(-1).send('x'.repeat(70_000));
    });
    await waitInPage(alice, 'the badge to show "reconnecting"', () => window.__badgeStates.includes('reconnecting'));
    await alice.waitFor('.badge[data-state="live"]');
    const states = await alice.eval(() => window.__badgeStates);
    check(states[0] === 'reconnecting' && states.at(-1) === 'live', `badge states after the drop: ${states}`);
    const sockets = await alice.eval(() => window.__sockets.length);
    check(sockets >= 2, `expected a new socket, the page opened ${sockets}`);
    await alice.click('button[data-message="messages.protected"]');
    await waitForText(alice, 'output[data-message="messages.protected"]', `Hello, ${ALICE.name}`);
  });

  await step(`the admin revokes bob's session; his page shows the sign-in screen within ${REVOCATION_LIMIT_MS} ms`, async () => {
    // What the server holds, through the REST API: the one session is this browser's, its socket counted.
    const api = await adminApi();
    const res = await api('GET', '/api/admin/sessions?per_page=200');
    check(res.status === 200, `GET /api/admin/sessions: HTTP ${res.status}`);
    const mine = (await res.json()).sessions.filter((s) => s.username === BOB.name);
    check(mine.length === 1, `expected one session of ${BOB.name}, saw ${mine.length}`);
    check(driver.userAgent.test(mine[0].user_agent ?? ''), `bob's session is not ${driver.name}'s: ${mine[0].user_agent}`);
    check(mine[0].sockets >= 1, `bob's open page has no socket counted (sockets: ${mine[0].sockets})`);

    await admin.click('#admin-tab-sessions');
    await admin.select('#admin-session-user', BOB.name);
    const rows = '#admin-sessions tbody tr';
    await admin.waitFor(`#admin-sessions tr[data-username="${BOB.name}"]`);
    await waitInPage(admin, `only ${BOB.name}'s sessions listed`, ([sel, name]) => [...document.querySelectorAll(sel)]
      .every((tr) => tr.dataset.username === name), [rows, BOB.name]);
    const count = await admin.count(rows);
    check(count === 1, `expected one session of ${BOB.name}, saw ${count}`);
    await waitForText(admin, `${rows} .sockets`, '1'); // bob's open page, counted live
    await shot(admin, '10-admin-sessions');

    const started = Date.now();
    const deleted = admin.nextResponse('DELETE', '/api/admin/sessions/')
      .then(({ status }) => ({ status, ms: Date.now() - started }));
    await admin.click({ button: 'Revoke', within: rows });
    await waitForText(bob, '#signin-notice', 'Your session was ended', REVOCATION_LIMIT_MS);
    const elapsed = Date.now() - started;
    const { status, ms } = await deleted;
    check(status === 204, `DELETE /api/admin/sessions/{id}: HTTP ${status}`);
    await bob.waitFor('#signin-form', 100);
    await waitForText(bob, '#signin-notice', 'administrator', 100);
    console.log(`     the DELETE answered after ${ms} ms; the sign-in screen was shown ${elapsed} ms after the click`);
    await shot(bob, '11-session-ended-phone');
  });

  await step('the Live charts draw the last 15 minutes and move by themselves after activity', async () => {
    const chart = (id) => `#admin-live figure[data-chart="${id}"]`;
    const total = async (id, series) => Number(await admin.text(`${chart(id)} tr[data-series="${series}"] .total`));
    await admin.click('#admin-tab-live');
    for (const id of ['sockets', 'messages', 'logins', 'sessions_ended']) await admin.waitFor(chart(id));
    check(await admin.count(`${chart('messages')} svg polyline`) >= 6, 'the messages chart has no lines');
    const okLine = `${chart('messages')} polyline[data-series="ok"]`;
    const pointsOf = (sel) => document.querySelector(sel)?.getAttribute('points') ?? '';
    const linePoints = await admin.eval(pointsOf, okLine);
    check(linePoints.split(' ').length === 900, 'the ok line does not have 900 points');
    // alice's page is open: at least one socket now.
    await waitUntil('the sockets chart to count an open socket', async () => await total('sockets', 'open') >= 1);
    const [messages, signIns] = [await total('messages', 'ok'), await total('logins', 'success')];
    await alice.click('button[data-message="messages.protected"]');
    await adminApi(); // a sign-in, from node
    await waitUntil('the charts to show the new message and sign-in', async () => (
      await total('messages', 'ok') > messages && await total('logins', 'success') > signIns), 12_000);
    check(await admin.eval(pointsOf, okLine) !== linePoints, 'the ok line did not move');
    await shot(admin, '11b-admin-live');
  });

  await step('the audit list shows a sign-in just made, linked to that user\'s sessions', async () => {
    const agent = `audit-step-${driver.name}`;
    const res = await fetch(`${BASE}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'User-Agent': agent },
      body: JSON.stringify({ username: ALICE.name, password: ALICE.password }),
      signal: AbortSignal.timeout(ACTION_TIMEOUT_MS),
    });
    check(res.status === 200, `${ALICE.name}'s sign-in: HTTP ${res.status}`);
    await admin.click('#admin-tab-audit');
    await admin.select('#admin-audit-user', ALICE.name);
    await admin.select('#admin-audit-action', 'login.success');
    const newest = '#admin-audit tbody tr:first-child';
    await admin.waitFor(`${newest}[data-username="${ALICE.name}"] span[title="${agent}"]`);
    await shot(admin, '11b-admin-audit');
    await admin.click(`${newest} button.link`);
    await waitInPage(admin, `the Sessions tab shown, listing only ${ALICE.name}'s sessions`, (name) => {
      const rows = [...document.querySelectorAll('#admin-sessions tbody tr')];
      return document.querySelector('#admin-tab-sessions')?.getAttribute('aria-selected') === 'true'
        && !document.querySelector('#admin-tabpanel-sessions').hidden
        && document.querySelector('#admin-session-user')?.selectedOptions[0]?.textContent === name
        && rows.length > 0 && rows.every((tr) => tr.dataset.username === name);
    }, ALICE.name);
    // Leave alice with her one browser session, as the next steps expect.
    const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const out = await fetch(`${BASE}/api/auth/logout`, { method: 'POST', headers: { Cookie: cookie } });
    check(out.status === 204, `signing that session out: HTTP ${out.status}`);
    await waitInPage(admin, `the Sessions panel without that session`, () => document
      .querySelectorAll('#admin-sessions tbody tr').length === 1);
  });

  await step('the admin screens on a phone-sized window', async () => {
    await admin.resize(PHONE);
    await admin.waitFor('#admin-tab-sessions[aria-selected="true"]');
    await admin.select('#admin-session-user', 'Everyone');
    await admin.waitFor(`#admin-sessions tr[data-username="${ALICE.name}"]`);
    await shot(admin, '12-admin-phone');
  });

  await step('sign out', async () => {
    await alice.click({ button: 'Sign out' });
    await waitForText(alice, '#signin-notice', 'You have signed out');
    await shot(alice, '13-signed-out');
    await alice.reload();
    await alice.waitFor('#signin-form');
    // The control for the reload step's check: signed out, the watch does see the form.
    check(await alice.eval(() => window.__signInFormSeen) === true, 'the sign-in form watch missed the form');
    const me = await alice.eval(() => fetch('/api/auth/me').then((r) => r.status));
    check(me === 401, `after sign-out GET /api/auth/me answers ${me}`);
  });

  // bob's page is signed out and idle since the revocation: an integrator's page there.
  await clientModuleSteps({ step, page: bob, user: BOB, driver });

  await step('nothing stored, no CSP violations, no script errors', async () => {
    for (const [who, page] of pages) {
      const stored = await page.eval(() => localStorage.length + sessionStorage.length);
      check(stored === 0, `${who}: ${stored} entries in local/session storage`);
      const csp = await page.eval(() => window.__cspViolations);
      check(Array.isArray(csp), `${who}: the page watch did not run (no CSP record)`);
      check(csp.length === 0, `${who}: CSP violations: ${csp.join(', ')}`);
      check(page.problems.length === 0, `${who}: ${page.problems.join(' | ')}`);
    }
  });

  await step('control: the watches above do see a script error and a CSP violation', async () => {
    await alice.eval(() => {
      setTimeout(() => { throw new Error('deliberate probe error'); });
      const inline = document.createElement('script');
      inline.textContent = 'window.__inlineRan = true;';
      document.head.append(inline);
    });
    await waitInPage(alice, 'the CSP violation event', () => window.__cspViolations.length > 0);
    check(!await alice.eval(() => window.__inlineRan === true), 'an inline script ran despite the CSP');
    await waitUntil('the script error in the page\'s problems', async () => alice.problems
      .some((p) => p.includes('deliberate probe error')), 5_000)
      .catch(() => { throw new Error(`the script error was not reported; saw: ${alice.problems.join(' | ')}`); });
    console.log(`     seen: ${await alice.eval(() => window.__cspViolations.join(', '))}; ${alice.problems.join(' | ')}`);
  });
}
