// What both browser runs (run.mjs: Chromium, firefox.mjs: Firefox) share:
// the environment tests/api/browser.rs passes, the time limits of a step,
// and two small helpers.

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
