// tether-client.js: the browser client of a tether server, as one ES module
// with no dependencies (types in tether-client.d.ts). The server serves it at
// /tether-client.js; the bundled app (web/js/) is built on it.
//
//   const tether = new Tether();                  // same origin as the page
//   await tether.signIn('alice', password);
//   tether.on('chat.message', (m) => show(m));
//   tether.on('signedOut', ({ reason }) => backToSignIn(reason));
//   tether.connect();
//   const { text } = await tether.request('messages.protected');
//
// REST: JSON in and out; the server's {"error":{code,message}} becomes a
// TetherError. The HttpOnly session cookie is the only credential, sent by
// the browser; nothing about the session is stored by the page.
//
// WebSocket (/ws): request/reply by id with a timeout, every server event to
// on(event, fn), and reconnection with jittered exponential backoff while
// the session is still valid. The wire format is the README's "WebSocket
// protocol" section (src/ws/protocol.rs is the truth).
//
// Connection state: "connecting" (first attempt), "live" (hello received),
// "reconnecting" (dropped; retrying), "ended" (closed, or the session ended).

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;
const HTTP_TIMEOUT_MS = 15_000;
/** The close code of a socket whose session ended. */
const SESSION_ENDED = 4001;
/** What `providers()` answers while the server has no providers route. */
const PASSWORD_ONLY = [{ id: 'password', kind: 'password' }];

const NOT_CONNECTED = 'Not connected. Try again once the connection is live.';

export class TetherError extends Error {
  /**
   * @param {object} fields
   * @param {number|null} fields.status HTTP status; 0 when the server could not be
   *   reached; null for an error of the socket (a reply, a timeout, not connected)
   * @param {string} fields.code the server's error code (`forbidden`, `rate_limited`, …),
   *   or the client's own: `network`, `http_<status>`, `not_connected`, `timeout`
   * @param {string} fields.message a sentence to show
   * @param {number|null} [fields.retryAfter] seconds, from the Retry-After header
   */
  constructor({ status, code, message, retryAfter = null }) {
    super(message);
    this.name = 'TetherError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** The server is down, restarting, or cannot reach its stores. */
  get unreachable() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date). */
export function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

const socketError = (code, message) => new TetherError({ status: null, code, message });

export class Tether {
  #base;
  #autoRefresh;
  #listeners = new Map(); // event → Set of functions
  /** Whether the client has seen this browser signed in (so a 401 means "lost"). */
  #signedIn = false;
  #ws = null;
  #state = 'ended';
  #stopped = true;
  #attempt = 0;
  #timer = null;
  #nextId = 0;
  #pending = new Map(); // id → { resolve, reject, timer }
  #onOnline = () => this.#retryNow();

  /**
   * @param {object} [options]
   * @param {string|URL} [options.baseUrl] where tether is (default: the page's origin);
   *   a path is kept, so `https://example.com/tether/` works behind a prefix
   * @param {boolean} [options.autoRefresh] answer `session.expiring` (idle) with
   *   `session.refresh`, so an open socket keeps its session alive
   */
  constructor({ baseUrl, autoRefresh = false } = {}) {
    const origin = baseUrl ?? globalThis.location?.origin;
    if (!origin) throw new TypeError('new Tether(): no baseUrl, and no page origin to default to');
    const base = new URL(origin);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.#base = base;
    this.#autoRefresh = autoRefresh;
  }

  /** The connection state: "connecting", "live", "reconnecting" or "ended". */
  get state() {
    return this.#state;
  }

  // -------------------------------------------------------------------------
  // REST

  /**
   * Signs in with a password → the user. Sign-in ends any session this browser
   * had, so an open socket is closed first (and reopened if sign-in fails).
   */
  async signIn(username, password) {
    const wasConnected = !this.#stopped;
    this.close();
    try {
      const { user } = await this.#http('POST', 'api/auth/login', { username, password }, { quiet401: true });
      this.#signedIn = true;
      return user;
    } catch (error) {
      if (wasConnected) this.connect();
      throw error;
    }
  }

  /** Signs out on the server; the socket closes first, with no `signedOut`. */
  async signOut() {
    const wasConnected = !this.#stopped;
    this.close();
    try {
      await this.#http('POST', 'api/auth/logout', undefined, { quiet401: true });
    } catch (error) {
      // Still signed in on the server.
      if (wasConnected) this.connect();
      throw error;
    }
    this.#signedIn = false;
  }

  /** {user, session} while signed in, else null (and `signedOut` if it was signed in). */
  async me() {
    try {
      const { user, session } = await this.#http('GET', 'api/auth/me', undefined, { quiet401: true });
      this.#signedIn = true;
      return { user, session };
    } catch (error) {
      if (error.status !== 401) throw error;
      this.#lost(null);
      return null;
    }
  }

  /**
   * The ways to sign in: [{id, kind}]. Until the server has the route
   * (`GET /api/auth/providers`, a 404 today) that is the password alone.
   */
  async providers() {
    try {
      const data = await this.#http('GET', 'api/auth/providers');
      return Array.isArray(data) ? data : data?.providers ?? PASSWORD_ONLY;
    } catch (error) {
      if (error.status === 404) return PASSWORD_ONLY;
      throw error;
    }
  }

  /**
   * Any REST route: rest('GET', '/api/admin/users') → the parsed JSON (null
   * for 204), or a thrown TetherError. A 401 `unauthenticated` while signed
   * in means the session ended: `signedOut` follows.
   */
  rest(method, path, body) {
    return this.#http(method, path.replace(/^\//, ''), body);
  }

  async #http(method, path, body, { quiet401 = false } = {}) {
    // The browser sends the cookie and the Origin header itself, as any
    // same-origin request does ("include" for a baseUrl on another origin).
    const init = { method, credentials: 'include', cache: 'no-store', headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (typeof AbortSignal.timeout === 'function') init.signal = AbortSignal.timeout(HTTP_TIMEOUT_MS);
    let res;
    try {
      res = await fetch(new URL(path, this.#base), init);
    } catch {
      throw new TetherError({ status: 0, code: 'network', message: 'The server cannot be reached.' });
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
    const error = new TetherError({
      status: res.status,
      code: err?.code ?? `http_${res.status}`,
      message: err?.message ?? `The server answered ${res.status}.`,
      retryAfter: parseRetryAfter(res.headers.get('Retry-After')),
    });
    if (res.status === 401 && error.code === 'unauthenticated' && !quiet401) this.#lost(null);
    throw error;
  }

  // -------------------------------------------------------------------------
  // Events

  /** Calls `fn(data)` on each `event`; returns the function that stops it. */
  on(event, fn) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    this.#listeners.get(event)?.delete(fn);
  }

  #emit(event, data) {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      try {
        fn(data);
      } catch (error) {
        // A listener's bug is reported as the page's, and the others still run.
        if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
        else console.error(error);
      }
    }
  }

  // -------------------------------------------------------------------------
  // The socket

  /** Opens the socket and keeps it open (reconnecting) until close() or the session ends. */
  connect() {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#attempt = 0;
    globalThis.addEventListener?.('online', this.#onOnline);
    this.#open('connecting');
  }

  /** Closes on purpose: no reconnect, no `signedOut`. */
  close() {
    this.#stop();
  }

  /** Sends {id,type,data} → the reply's data, or a TetherError with the reply's code. */
  request(type, data = {}, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.#state !== 'live') {
      return Promise.reject(socketError('not_connected', NOT_CONNECTED));
    }
    this.#nextId += 1;
    const id = this.#nextId;
    ws.send(JSON.stringify({ id, type, data }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(socketError('timeout', 'No answer from the server in time.'));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
    });
  }

  #open(state) {
    this.#setState(state);
    const url = new URL('ws', this.#base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    this.#ws = ws;
    // Only the current socket speaks: a late frame from an old one is ignored.
    ws.onmessage = (e) => { if (this.#ws === ws) this.#receive(e.data); };
    ws.onclose = (e) => { if (this.#ws === ws) this.#closed(e); };
  }

  #receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg && Object.hasOwn(msg, 're')) {
      this.#reply(msg);
      return;
    }
    if (!msg || typeof msg.event !== 'string') return;
    const data = msg.data ?? {};
    if (msg.event === 'hello') {
      this.#attempt = 0;
      this.#signedIn = true;
      this.#setState('live');
    }
    this.#emit(msg.event, data);
    if (msg.event === 'session.revoked') {
      // The 4001 close follows, but its closing handshake can take a while:
      // the session is over now, so end here (the 4001 path covers a missed event).
      this.#lost(data.reason ?? null);
    } else if (msg.event === 'session.expiring' && data.kind === 'idle' && this.#autoRefresh) {
      this.request('session.refresh').catch(() => {});
    }
  }

  #reply(msg) {
    const waiter = this.#pending.get(msg.re);
    if (!waiter) return;
    this.#pending.delete(msg.re);
    clearTimeout(waiter.timer);
    if (msg.ok) {
      waiter.resolve(msg.data);
    } else {
      const code = msg.error?.code ?? 'internal';
      waiter.reject(socketError(code, msg.error?.message ?? `The server refused the request (${code}).`));
    }
  }

  #closed(event) {
    this.#ws = null;
    this.#failPending();
    if (this.#stopped) return;
    if (event.code === SESSION_ENDED) {
      this.#lost(null);
      return;
    }
    // A network drop, a heartbeat timeout, a restart, 1013 (store unavailable):
    // try again later, if the session is still valid then.
    this.#setState('reconnecting');
    this.#schedule();
  }

  #schedule() {
    clearTimeout(this.#timer);
    // Exponential backoff with jitter: a random delay in [cap/2, cap], so
    // many pages dropped together do not come back in lockstep.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.#attempt);
    const delay = cap / 2 + Math.random() * (cap / 2);
    this.#attempt += 1;
    this.#timer = setTimeout(() => this.#retry(), delay);
  }

  #retryNow() {
    if (this.#stopped || this.#state !== 'reconnecting' || this.#ws) return;
    clearTimeout(this.#timer);
    this.#attempt = 0;
    this.#retry();
  }

  /** Asks /api/auth/me first: a refused upgrade (401) looks like any other failure to a page. */
  async #retry() {
    if (this.#stopped || this.#ws) return;
    let me;
    try {
      me = await this.me();
    } catch {
      me = undefined; // unreachable: try again later
    }
    if (this.#stopped || this.#ws) return;
    if (me === null) this.#lost(null);
    else if (me) this.#open('reconnecting');
    else this.#schedule();
  }

  /** The session ended on the server: stop, and say so once. */
  #lost(reason) {
    const wasSignedIn = this.#signedIn || !this.#stopped;
    this.#signedIn = false;
    this.#stop();
    if (wasSignedIn) this.#emit('signedOut', { reason });
  }

  /** Forgets the socket (its late frames are ignored), closes it, and stops retrying. */
  #stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    globalThis.removeEventListener?.('online', this.#onOnline);
    const ws = this.#ws;
    this.#ws = null;
    this.#failPending();
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'bye');
    this.#setState('ended');
  }

  #failPending() {
    for (const waiter of this.#pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(socketError('not_connected', NOT_CONNECTED));
    }
    this.#pending.clear();
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit('state', state);
  }
}
