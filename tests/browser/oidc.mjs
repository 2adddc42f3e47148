// Sign-in through an OpenID Connect provider in Debian's Chromium
// (playwright-core, headless), against the real provider of tests/oidc.
// Run by tests/api/oidc/browser.rs.
//
// 1. A deep link opened signed out (#/sessions) shows the sign-in screen with
//    a "Sign in with Corp SSO" link; the link goes through the provider (which
//    approves at once) and lands back on #/sessions, signed in, socket live.
// 2. The provider's back-channel logout ends that session: the page shows
//    the sign-in screen and says why.
// 3. A failed provider sign-in (#/signin?error=…) is explained in words, and
//    the address goes back to #/.
//
// Environment: TETHER_URL, TETHER_OIDC_ISSUER (the provider, for its test
// control route), TETHER_OIDC_SUB (the account it signs in),
// TETHER_CHROMIUM (default /usr/bin/chromium), TETHER_ARTIFACTS (screenshots).

import { chromium } from 'playwright-core';

const BASE = process.env.TETHER_URL;
const ISSUER = process.env.TETHER_OIDC_ISSUER;
const SUB = process.env.TETHER_OIDC_SUB;
const ARTIFACTS = process.env.TETHER_ARTIFACTS;
const TIMEOUT = 15_000;

const browser = await chromium.launch({
  executablePath: process.env.TETHER_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: 30_000,
  // As chromium.mjs: no calling home (this network refuses it).
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
});
let page;
const step = (text) => console.log(`step: ${text}`);
try {
  const context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);

  step('a deep link opened signed out shows the provider button');
  await page.goto(`${BASE}/#/sessions`);
  const button = page.getByRole('link', { name: 'Sign in with Corp SSO', exact: true });
  await button.waitFor();

  step('the button goes through the provider and back to the deep link');
  await button.click();
  await page.waitForURL(`${BASE}/#/sessions`, { timeout: TIMEOUT });
  await page.locator('[data-view="sessions"]').waitFor();
  await page.getByText('Live', { exact: true }).first().waitFor();
  await page.screenshot({ path: `${ARTIFACTS}/signed-in.png`, fullPage: true });

  step('signing out at the provider ends the session in the page');
  const res = await fetch(`${ISSUER}/__test/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sub: SUB }),
  });
  const answer = await res.json();
  if (!answer.delivered) throw new Error(`back-channel logout not delivered: ${JSON.stringify(answer)}`);
  await page.locator('[data-view="signin"]').waitFor();
  const notice = await page.locator('#signin-notice').textContent();
  if (!notice.includes('you signed out')) throw new Error(`unexpected notice: ${notice}`);
  await page.screenshot({ path: `${ARTIFACTS}/signed-out-by-provider.png`, fullPage: true });

  step('a failed provider sign-in is explained in words');
  await page.goto(`${BASE}/#/signin?error=disabled`);
  await page.reload();
  await page.locator('#signin-notice').waitFor();
  const words = await page.locator('#signin-notice').textContent();
  if (words !== 'Your account is disabled.') throw new Error(`unexpected error text: ${words}`);
  if (!page.url().endsWith('#/')) throw new Error(`the address kept the error: ${page.url()}`);
  await page.screenshot({ path: `${ARTIFACTS}/provider-error.png`, fullPage: true });
  console.log('oidc browser run: ok');
} catch (error) {
  console.error(`oidc browser run failed: ${error.stack ?? error}`);
  if (page) await page.screenshot({ path: `${ARTIFACTS}/failure.png`, fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
