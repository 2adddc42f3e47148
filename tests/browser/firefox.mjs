// The page interface of scenario.mjs in Debian's Firefox ESR, driven over
// WebDriver (selenium-webdriver → geckodriver → /usr/bin/firefox-esr,
// headless); runs the scenario. Screenshots go to $TETHER_ARTIFACTS/firefox-*.png.
//
// Playwright drives only its own patched Firefox build, which cannot be
// downloaded here, so this driver speaks the W3C protocols: WebDriver classic
// for clicks and keys, WebDriver BiDi for what classic cannot do (the page
// watch that runs before the app's scripts on every load, the page's script
// errors and console, the document's response headers, answering or refusing
// a request, and seeing a response).
//
// Each page is its own Firefox with a fresh temporary profile (its own
// cookies), with its own geckodriver. Firefox will not make a window narrower
// than 500 px, so a narrower size gets 500 (still the app's narrow layout).
//
// Environment: as common.mjs, and TETHER_FIREFOX (default
// /usr/bin/firefox-esr), TETHER_GECKODRIVER (default: geckodriver on PATH).

import { writeFile } from 'node:fs/promises';
import { Builder, Key } from 'selenium-webdriver';
import firefox from 'selenium-webdriver/firefox.js';
import { ACTION_TIMEOUT_MS, BASE, runScenario, sleep, waitUntil, watchPage } from './common.mjs';
import { scenario } from './scenario.mjs';

const START_LIMIT_MS = 40_000; // geckodriver + Firefox start, per browser
const NARROWEST_PX = 500;
const KEYS = { Tab: Key.TAB, Enter: Key.ENTER };

const FIREFOX = process.env.TETHER_FIREFOX || '/usr/bin/firefox-esr';
const GECKODRIVER = process.env.TETHER_GECKODRIVER || 'geckodriver';

const drivers = [];

/** In the page: the elements a scenario target names (see scenario.mjs). */
function findAll(target) {
  if (typeof target === 'string') return [...document.querySelectorAll(target)];
  const text = (el) => (el.getAttribute('aria-label') ?? el.textContent ?? '').replace(/\s+/g, ' ').trim();
  const scopes = target.within ? [...document.querySelectorAll(target.within)] : [document];
  return scopes.flatMap((scope) => {
    if ('label' in target) {
      return [...scope.querySelectorAll('label')].filter((l) => text(l) === target.label && l.control).map((l) => l.control);
    }
    if ('button' in target) return [...scope.querySelectorAll('button, [role="button"]')].filter((b) => text(b) === target.button);
    if ('link' in target) return [...scope.querySelectorAll('a[href], [role="link"]')].filter((a) => text(a) === target.link);
    throw new Error(`not a target: ${JSON.stringify(target)}`);
  });
}

/** In the page: whether an element is rendered (as Playwright's "visible"). */
function visible(el) {
  return el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
}

/** Runs `fn(arg)` in the page (with findAll and visible in scope) and returns its value, awaited. */
function run(driver, fn, arg) {
  return driver.executeScript(`const findAll = ${findAll}; const visible = ${visible};
    return (${fn}).apply(null, arguments)`, arg);
}

/** A WebDriver BiDi command; an error answer throws. */
async function send(bidi, method, params) {
  const answer = await bidi.send({ method, params });
  if (answer.type === 'error') throw new Error(`${method}: ${answer.error}: ${answer.message}`);
  return answer.result;
}

/** The page interface over one Firefox. */
function pageOf(driver, bidi, context, problems) {
  /** The first visible `target` (enabled too, when it is to be acted on), as a WebElement. */
  const element = (target, { enabled = false, timeout = ACTION_TIMEOUT_MS } = {}) => waitUntil(
    `${JSON.stringify(target)} to be visible${enabled ? ' and enabled' : ''}`,
    () => run(driver, ([t, e]) => findAll(t).find((el) => visible(el) && !(e && el.disabled)) ?? null, [target, enabled]),
    timeout,
  );
  // The document's last response in this page, from BiDi's network events.
  let documentResponse = null;
  bidi.on('network.responseCompleted', ({ context: ctx, navigation, response }) => {
    if (ctx === context && navigation) documentResponse = response;
  });
  // Requests answered here instead of by the server: intercept id → answer.
  const answers = new Map();
  const mocked = new Map(); // path → intercept id
  bidi.on('network.beforeRequestSent', ({ isBlocked, intercepts, request }) => {
    const answer = isBlocked && answers.get(intercepts?.find((id) => answers.has(id)));
    if (!answer) return;
    const reply = answer.refuse
      ? send(bidi, 'network.failRequest', { request: request.request })
      : send(bidi, 'network.provideResponse', {
        request: request.request,
        statusCode: answer.status,
        headers: Object.entries(answer.headers ?? {}).map(([name, value]) => ({ name, value: { type: 'string', value } })),
        body: { type: 'string', value: answer.body ?? '' },
      });
    reply.catch((e) => problems.push(`answering ${request.url}: ${e.message}`));
  });

  return {
    problems,
    async goto(url) {
      documentResponse = null;
      await driver.get(url);
      const response = await waitUntil('the document response', async () => documentResponse, 2_000).catch(() => null);
      const headers = Object.fromEntries((response?.headers ?? []).map((h) => [h.name.toLowerCase(), h.value.value]));
      return { status: response?.status, headers };
    },
    reload: () => driver.navigate().refresh(),
    waitFor: (target, timeout) => element(target, { timeout }).then(() => {}),
    text: (target) => run(driver, (t) => findAll(t)[0]?.textContent ?? null, target),
    count: (target) => run(driver, (t) => findAll(t).length, target),
    isDisabled: async (target) => !await (await element(target)).isEnabled(),
    async fill(target, text) {
      const field = await element(target, { enabled: true });
      await field.clear();
      await field.sendKeys(text);
    },
    click: async (target) => (await element(target, { enabled: true })).click(),
    async check(target) {
      const box = await element(target, { enabled: true });
      if (!await box.isSelected()) await box.click();
      if (!await box.isSelected()) throw new Error(`${JSON.stringify(target)} did not become checked`);
    },
    async select(target, option) {
      await element(target, { enabled: true });
      const choice = await waitUntil(`option "${option}" of ${target}`, () => run(driver, ([t, text]) => [...findAll(t)[0].options]
        .find((o) => o.textContent.trim() === text) ?? null, [target, option]));
      await choice.click();
    },
    type: (text) => driver.actions().sendKeys(text).perform(),
    async press(key, target) {
      if (target) await (await element(target, { enabled: true })).sendKeys(KEYS[key]);
      else await driver.actions().sendKeys(KEYS[key]).perform();
    },
    eval: (fn, arg) => run(driver, fn, arg),
    async resize({ width, height }) {
      if (width < NARROWEST_PX) console.log(`     Firefox's narrowest window is ${NARROWEST_PX} px: ${NARROWEST_PX}×${height}, not ${width}×${height}`);
      await driver.manage().window().setRect({ width: Math.max(width, NARROWEST_PX), height });
    },
    async mock(path, answer) {
      if (mocked.has(path)) {
        answers.delete(mocked.get(path));
        await send(bidi, 'network.removeIntercept', { intercept: mocked.get(path) });
        mocked.delete(path);
      }
      if (!answer) return;
      const { intercept } = await send(bidi, 'network.addIntercept', {
        phases: ['beforeRequestSent'], urlPatterns: [{ type: 'string', pattern: `${BASE}${path}` }], contexts: [context],
      });
      answers.set(intercept, answer);
      mocked.set(path, intercept);
    },
    nextResponse: (method, prefix) => new Promise((resolve, reject) => {
      const seen = ({ context: ctx, request, response }) => {
        if (ctx !== context || request.method !== method || !request.url.startsWith(`${BASE}${prefix}`)) return;
        bidi.off('network.responseCompleted', seen);
        clearTimeout(timer);
        resolve({ status: response.status });
      };
      const timer = setTimeout(() => {
        bidi.off('network.responseCompleted', seen);
        reject(new Error(`no ${method} ${prefix}… response within ${ACTION_TIMEOUT_MS} ms`));
      }, ACTION_TIMEOUT_MS);
      bidi.on('network.responseCompleted', seen);
    }),
    async screenshot(file) {
      const png = await driver.takeFullPageScreenshot().catch(() => driver.takeScreenshot());
      await writeFile(file, png, 'base64');
    },
    html: () => driver.getPageSource(),
    url: () => driver.getCurrentUrl(),
  };
}

/** Starts a Firefox with a fresh profile and its own geckodriver, with the BiDi hooks every page load gets. */
async function openFirefox(who, size) {
  const width = Math.max(size.width, NARROWEST_PX);
  const options = new firefox.Options()
    .setBinary(FIREFOX)
    .addArguments('-headless', `--width=${width}`, `--height=${size.height}`)
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
  const starting = new Builder().forBrowser('firefox').setFirefoxOptions(options).setFirefoxService(service).build();
  // Quit it even when it starts after the limit, so no Firefox outlives the run.
  starting.then((driver) => drivers.push(driver), () => {});
  const driver = await Promise.race([
    starting,
    sleep(START_LIMIT_MS).then(() => { throw new Error(`${who}: Firefox did not start within ${START_LIMIT_MS / 1000} s`); }),
  ]);
  await driver.manage().setTimeouts({ implicit: 0, pageLoad: ACTION_TIMEOUT_MS, script: ACTION_TIMEOUT_MS });

  const bidi = await driver.getBidi();
  const context = await driver.getWindowHandle();
  await send(bidi, 'script.addPreloadScript', { functionDeclaration: watchPage.toString() });
  const problems = [];
  bidi.on('log.entryAdded', ({ type, level, text }) => {
    if (type === 'javascript') problems.push(`script error: ${text}`);
    else if (level === 'error') problems.push(`console error: ${text}`);
  });
  await send(bidi, 'session.subscribe', {
    events: ['log.entryAdded', 'network.beforeRequestSent', 'network.responseCompleted'],
  });
  const caps = await driver.getCapabilities();
  const [innerWidth, innerHeight] = await run(driver, () => [window.innerWidth, window.innerHeight]);
  console.log(`${who}: ${caps.get('browserName')} ${caps.get('browserVersion')}, window ${width}×${size.height}, viewport ${innerWidth}×${innerHeight}`);
  return pageOf(driver, bidi, context, problems);
}

await runScenario({
  name: 'Firefox',
  runName: 'Firefox run',
  artifactPrefix: 'firefox-',
  limitMs: 75_000, // the Rust test gives the whole run 100 s
  userAgent: /Firefox\//,
  start: async () => console.log(`Firefox against ${BASE}`),
  open: openFirefox,
  close: () => Promise.all(drivers.map((driver) => driver.quit().catch(() => {}))),
}, scenario);
