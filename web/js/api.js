// The REST client: JSON in and out, the server's {"error":{code,message}}
// turned into ApiError. The HttpOnly session cookie is the only credential;
// nothing about the session is stored by the page.

const TIMEOUT_MS = 15000;

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {string} code the server's error code, or "network"
   * @param {string} message
   * @param {number|null} retryAfter seconds, from the Retry-After header
   */
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** The server is down, restarting, or cannot reach its stores. */
  get unreachable() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

let onSessionLost = () => {};
/** Called when a signed-in request gets 401 `unauthenticated`: the session ended. */
export function setSessionLostHandler(fn) {
  onSessionLost = fn;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date). */
export function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/**
 * api('GET', '/api/auth/me') → parsed JSON (null for 204), or throws ApiError.
 * `expectSignedIn: false` for requests where a 401 is an answer, not a lost
 * session (sign-in, the first /me).
 */
export async function api(method, path, body, { expectSignedIn = true } = {}) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (typeof AbortSignal.timeout === 'function') init.signal = AbortSignal.timeout(TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached.');
  }
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const err = data && typeof data === 'object' ? data.error : null;
  const error = new ApiError(
    res.status,
    err?.code ?? `http_${res.status}`,
    err?.message ?? `The server answered ${res.status}.`,
    parseRetryAfter(res.headers.get('Retry-After')),
  );
  if (res.status === 401 && error.code === 'unauthenticated' && expectSignedIn) onSessionLost();
  throw error;
}

/** A sentence for an error shown next to the action that caused it. */
export function describe(error) {
  if (!(error instanceof ApiError)) return error?.message ?? String(error);
  if (error.unreachable) {
    const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : ' Try again in a moment.';
    return `The server is not answering right now.${wait}`;
  }
  return error.message;
}
