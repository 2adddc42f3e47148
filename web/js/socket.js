// The WebSocket to /ws: request/reply by id, server events, and reconnection
// with exponential backoff and jitter while the session is still valid.
//
// Status: "connecting" (first attempt), "live" (hello received),
// "reconnecting" (dropped; retrying), "ended" (stopped, or the session ended).

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30000;
const REQUEST_TIMEOUT_MS = 10000;
export const SESSION_ENDED = 4001;

export class NotConnected extends Error {
  constructor() {
    super('Not connected. Try again once the connection is live.');
  }
}

export class Connection {
  /**
   * @param {object} hooks
   * @param {(event: string, data: any) => void} hooks.onEvent every server event, hello included
   * @param {(status: string) => void} hooks.onStatus
   * @param {(reason: string|null) => void} hooks.onSessionEnded after a 4001 close, or when
   *   a reconnect finds the session gone; `reason` from `session.revoked`, if one came
   * @param {() => Promise<"ok"|"ended"|"unreachable">} hooks.checkSession asked before each
   *   reconnect: a refused upgrade (401) looks like any other failure to a page
   */
  constructor({ onEvent, onStatus, onSessionEnded, checkSession }) {
    this.hooks = { onEvent, onStatus, onSessionEnded, checkSession };
    this.ws = null;
    this.status = 'ended';
    this.stopped = true;
    this.attempt = 0;
    this.timer = null;
    this.nextId = 0;
    this.pending = new Map();
    this.revokedReason = null;
    this.onOnline = () => this.retryNow();
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    window.addEventListener('online', this.onOnline);
    this.open('connecting');
  }

  /** Closes on purpose (sign-out): no reconnect, no "session ended". */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    this.detach();
    this.setStatus('ended');
  }

  /** Sends {id,type,data}; resolves with the reply {re, ok, data|error}. */
  request(type, data = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.status !== 'live') {
      return Promise.reject(new NotConnected());
    }
    this.nextId += 1;
    const id = this.nextId;
    this.ws.send(JSON.stringify({ id, type, data }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('No answer from the server in time.'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  open(status) {
    this.setStatus(status);
    this.revokedReason = null;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    // Only the current socket speaks: a late event from an old one is ignored.
    ws.onmessage = (e) => { if (this.ws === ws) this.receive(e.data); };
    ws.onclose = (e) => { if (this.ws === ws) this.closed(e); };
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg && Object.hasOwn(msg, 're')) {
      const waiter = this.pending.get(msg.re);
      if (waiter) {
        this.pending.delete(msg.re);
        clearTimeout(waiter.timer);
        waiter.resolve(msg);
      }
      return;
    }
    if (!msg || typeof msg.event !== 'string') return;
    if (msg.event === 'hello') {
      this.attempt = 0;
      this.setStatus('live');
    } else if (msg.event === 'session.revoked') {
      // The 4001 close follows, but its closing handshake can take a while:
      // the session is over now, so end here (the 4001 path covers a missed event).
      this.revokedReason = msg.data?.reason ?? null;
      this.hooks.onEvent(msg.event, msg.data ?? {});
      this.detach();
      this.end(this.revokedReason);
      return;
    }
    this.hooks.onEvent(msg.event, msg.data ?? {});
  }

  /** Forgets the current socket (its late events are ignored) and closes it. */
  detach() {
    const ws = this.ws;
    this.ws = null;
    this.failPending();
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'bye');
  }

  closed(event) {
    this.ws = null;
    this.failPending();
    if (this.stopped) return;
    if (event.code === SESSION_ENDED) {
      this.end(this.revokedReason);
      return;
    }
    // A network drop, a heartbeat timeout, a restart, 1013 (store unavailable):
    // try again later, if the session is still valid then.
    this.setStatus('reconnecting');
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    // Exponential backoff with jitter: a random delay in [cap/2, cap], so
    // many pages dropped together do not come back in lockstep.
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = cap / 2 + Math.random() * (cap / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.retry(), delay);
  }

  retryNow() {
    if (this.stopped || this.status !== 'reconnecting' || this.ws) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.retry();
  }

  async retry() {
    if (this.stopped || this.ws) return;
    let verdict;
    try {
      verdict = await this.hooks.checkSession();
    } catch {
      verdict = 'unreachable';
    }
    if (this.stopped || this.ws) return;
    if (verdict === 'ended') this.end(null);
    else if (verdict === 'ok') this.open('reconnecting');
    else this.schedule();
  }

  end(reason) {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    this.setStatus('ended');
    this.hooks.onSessionEnded(reason);
  }

  failPending() {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new NotConnected());
    }
    this.pending.clear();
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.hooks.onStatus(status);
  }
}
