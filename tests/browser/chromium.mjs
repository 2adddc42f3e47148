// The page interface of scenario.mjs in Debian's Chromium, driven by
// playwright-core (headless); runs the scenario. Each page is a fresh browser
// context (its own cookies), a narrow one with touch. Screenshots go to
// $TETHER_ARTIFACTS/*.png.
//
// Environment: as common.mjs, and TETHER_CHROMIUM (default /usr/bin/chromium).

import { writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { ACTION_TIMEOUT_MS, BASE, watchPage, runScenario } from './common.mjs';
import { scenario } from './scenario.mjs';

const CHROMIUM = process.env.TETHER_CHROMIUM || '/usr/bin/chromium';

let browser;

/** A scenario target as a Playwright locator. */
function locate(page, target) {
  if (typeof target === 'string') return page.locator(target);
  const scope = target.within ? page.locator(target.within) : page;
  if ('label' in target) return scope.getByLabel(target.label, { exact: true });
  if ('button' in target) return scope.getByRole('button', { name: target.button, exact: true });
  if ('link' in target) return scope.getByRole('link', { name: target.link, exact: true });
  throw new Error(`not a target: ${JSON.stringify(target)}`);
}

/** The page interface over one Playwright page. */
function pageOf(page, problems) {
  const routes = new Map(); // path → handler
  return {
    problems,
    async goto(url) {
      const res = await page.goto(url);
      return { status: res?.status(), headers: res?.headers() ?? {} };
    },
    reload: () => page.reload(),
    waitFor: (target, timeout) => locate(page, target).waitFor({ timeout }),
    async text(target) {
      const first = locate(page, target).first();
      return await first.count() ? first.textContent({ timeout: 100 }).catch(() => null) : null;
    },
    count: (target) => locate(page, target).count(),
    isDisabled: (target) => locate(page, target).isDisabled(),
    fill: (target, text) => locate(page, target).fill(text),
    click: (target) => locate(page, target).click(),
    check: (target) => locate(page, target).check(),
    select: (target, option) => locate(page, target).selectOption({ label: option }),
    type: (text) => page.keyboard.type(text),
    press: (key, target) => (target ? locate(page, target).press(key) : page.keyboard.press(key)),
    eval: (fn, arg) => page.evaluate(fn, arg),
    resize: (size) => page.setViewportSize(size),
    async mock(path, answer) {
      const pattern = `${BASE}${path}`;
      if (routes.has(path)) await page.unroute(pattern, routes.get(path));
      routes.delete(path);
      if (!answer) return;
      const handler = (route) => (answer.refuse
        ? route.abort('connectionrefused')
        : route.fulfill({ status: answer.status, headers: answer.headers, body: answer.body }));
      routes.set(path, handler);
      await page.route(pattern, handler);
    },
    nextResponse: (method, prefix) => page
      .waitForResponse((r) => r.request().method() === method && r.url().startsWith(`${BASE}${prefix}`))
      .then((r) => ({ status: r.status() })),
    screenshot: (file) => page.screenshot({ path: file, fullPage: true }),
    html: () => page.content(),
    url: async () => page.url(),
  };
}

await runScenario({
  name: 'Chromium',
  runName: 'browser run',
  artifactPrefix: '',
  limitMs: 110_000, // the Rust test gives the whole run 150 s
  userAgent: /Chrome\//,
  async start() {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      // Playwright adds a fresh temporary --user-data-dir itself. Without the
      // background-networking flags Chromium calls home, and this network refuses.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    console.log(`Chromium ${browser.version()} against ${BASE}`);
  },
  async open(who, viewport) {
    const context = await browser.newContext({ viewport, hasTouch: viewport.width < 500 });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    await context.addInitScript(watchPage);
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
    return pageOf(page, problems);
  },
  close: async () => browser?.close(),
}, scenario);
