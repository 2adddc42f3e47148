// Types of tether-client.js, the browser client of a tether server.
// The shapes follow the README ("REST API", "WebSocket protocol").

/** `USER`: the signed-in user, with the permissions of their current roles. */
export interface User {
  id: string;
  username: string;
  roles: string[];
  permissions: string[];
}

/** `SESSION`: the public session id and its deadlines (RFC 3339 UTC). */
export interface Session {
  id: string;
  created_at: string;
  expires_at: string;
}

/** A way to sign in. Until the server lists them, only `{id: "password", kind: "password"}`. */
export interface Provider {
  /** `password`, or a configured OpenID Connect provider's id. */
  id: string;
  /** `password` or `oidc`. */
  kind: string;
  /** OpenID Connect: the button text. */
  name?: string;
  /** OpenID Connect: where a browser goes to sign in (`?return_to=PATH` optional). */
  start_url?: string;
}

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'ended';

/** Why the server ended a session (`session.revoked`'s `reason`). */
export type EndReason = 'logout' | 'admin' | 'expired' | 'password_changed' | 'disabled' | 'deleted';

/** What `on(event, fn)` passes to `fn`: the server's events, then the client's own. */
export interface TetherEvents {
  hello: { user: User; session: Session };
  'session.revoked': { reason: EndReason };
  'session.expiring': { in_secs: number; kind: 'idle' | 'absolute' };
  'permissions.changed': { permissions: string[] };
  'chat.message': { room: string; from: string; text: string; at: string };
  /** The connection's state changed. */
  state: ConnectionState;
  /**
   * The session ended on the server: after `session.revoked` (its reason), a
   * 4001 close, a reconnect that finds the session gone, or a 401
   * `unauthenticated` from a REST call (`reason` null for those three).
   */
  signedOut: { reason: EndReason | null };
}

/** The built-in message types: what `request(type, data)` sends and its reply's `data`. */
export interface Requests {
  ping: { data: Record<string, never>; reply: 'pong' };
  whoami: { data: Record<string, never>; reply: { user: User; session: Session } };
  'messages.public': { data: Record<string, never>; reply: { text: string } };
  'messages.protected': { data: Record<string, never>; reply: { text: string } };
  'messages.admin': { data: Record<string, never>; reply: { text: string } };
  'chat.send': { data: { room: string; text: string }; reply: { room: string; at: string } };
  'session.refresh': { data: Record<string, never>; reply: { expires_at: string } };
}

export interface TetherOptions {
  /** Where tether is (default: the page's origin); a path prefix is kept. */
  baseUrl?: string | URL;
  /** Answer `session.expiring` (kind `idle`) with `session.refresh` (default false). */
  autoRefresh?: boolean;
}

export interface RequestOptions {
  /** How long to wait for the reply (default 10 000 ms); then a `timeout` error. */
  timeoutMs?: number;
}

export declare class TetherError extends Error {
  constructor(fields: { status: number | null; code: string; message: string; retryAfter?: number | null });
  /** HTTP status; 0 when the server could not be reached; null for a socket error. */
  readonly status: number | null;
  /**
   * The server's error code (`invalid_credentials`, `unauthenticated`, `forbidden`,
   * `rate_limited`, `unavailable`, …), or the client's own: `network`,
   * `http_<status>`, `not_connected`, `timeout`.
   */
  readonly code: string;
  /** Seconds to wait, from the Retry-After header (429, 503), else null. */
  readonly retryAfter: number | null;
  /** The server is down, restarting, or cannot reach its stores (status 0, 502, 503, 504). */
  readonly unreachable: boolean;
}

export declare class Tether {
  constructor(options?: TetherOptions);

  /** The connection's state now. */
  readonly state: ConnectionState;

  /** POST /api/auth/login → the user. Closes an open socket first (sign-in ends this browser's previous session). */
  signIn(username: string, password: string): Promise<User>;
  /** Closes the socket (no `signedOut`), then POST /api/auth/logout. */
  signOut(): Promise<void>;
  /** GET /api/auth/me → `{user, session}`, or null when not signed in. */
  me(): Promise<{ user: User; session: Session } | null>;
  /** GET /api/auth/providers; `[{id: "password", kind: "password"}]` while the server answers 404. */
  providers(): Promise<Provider[]>;
  /** Any REST route → its parsed JSON (null for 204); a TetherError otherwise. */
  rest<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;

  /** Opens the socket and keeps it open (reconnecting) until `close()` or the session ends. */
  connect(): void;
  /** Closes on purpose: no reconnect, no `signedOut`. */
  close(): void;

  /** Calls `fn` on each `event`; returns the function that stops it. */
  on<K extends keyof TetherEvents>(event: K, fn: (data: TetherEvents[K]) => void): () => void;
  on(event: string, fn: (data: any) => void): () => void;
  off<K extends keyof TetherEvents>(event: K, fn: (data: TetherEvents[K]) => void): void;
  off(event: string, fn: (data: any) => void): void;

  /** Sends a message → its reply's `data`; a TetherError with the reply's code (`forbidden`, …) otherwise. */
  request<K extends keyof Requests>(type: K, data?: Requests[K]['data'], options?: RequestOptions): Promise<Requests[K]['reply']>;
  /** Any other type (a built-in one must match `Requests`). */
  request<T = unknown, K extends string = string>(
    type: K & (K extends keyof Requests ? never : unknown),
    data?: object,
    options?: RequestOptions,
  ): Promise<T>;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
export declare function parseRetryAfter(value: string | null): number | null;
