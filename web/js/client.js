// The app's one tether client (/tether-client.js, the module integrators
// use too), and how its errors read next to the action that caused them.

import { Tether, TetherError } from '../tether-client.js';

/** Same origin; no autoRefresh: an unattended tab must not keep its session alive. */
export const tether = new Tether();

/** A sentence for an error shown next to the action that caused it. */
export function describe(error) {
  if (!(error instanceof TetherError)) return error?.message ?? String(error);
  if (error.unreachable) {
    const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : ' Try again in a moment.';
    return `The server is not answering right now.${wait}`;
  }
  return error.message;
}
