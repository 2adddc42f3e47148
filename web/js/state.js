// What the page knows while signed in, and a tiny event bus for changes.
// Cleared on sign-out and when the session ends; never persisted.

export const ROLE_HINTS = ['admin', 'user', 'messages-admin'];

export const state = {
  /** USER from /api/auth/me or the socket's hello: {id, username, roles, permissions} */
  user: null,
  /** SESSION: {id, created_at, expires_at} */
  session: null,
  /** Chat messages received on this page: {room, from, text, at} */
  chat: [],
};

const bus = new EventTarget();

/** Events: "user" (identity or permissions changed), "chat", "connection", "expiring". */
export function emit(name, detail) {
  bus.dispatchEvent(new CustomEvent(name, { detail }));
}

/** Subscribes; returns the unsubscribe function. */
export function on(name, fn) {
  const listener = (e) => fn(e.detail);
  bus.addEventListener(name, listener);
  return () => bus.removeEventListener(name, listener);
}

export function can(permission) {
  return Boolean(state.user?.permissions?.includes(permission));
}

export function canAdmin() {
  return can('admin:users') || can('admin:sessions') || can('admin:audit');
}

export function clearState() {
  state.user = null;
  state.session = null;
  state.chat = [];
}
