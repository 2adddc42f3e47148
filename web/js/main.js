// Boot, the signed-in shell, hash routing (#/, #/sessions, #/admin) and the
// session lifecycle: /api/auth/me first, then the socket; back to the sign-in
// screen when the session ends. The REST calls, the socket and its
// reconnection are tether-client.js's (through client.js).

import { tether, describe } from './client.js';
import { h, replace } from './dom.js';
import { state, emit, on, canAdmin, clearState } from './state.js';
import { signInView } from './views/signin.js';
import { homeView } from './views/home.js';
import { sessionsView } from './views/sessions.js';
import { adminView } from './views/admin.js';
import { expiringNotice } from './views/expiring.js';

const ROUTES = {
  '/': { view: homeView, label: 'Home' },
  '/sessions': { view: sessionsView, label: 'My sessions' },
  '/admin': { view: adminView, label: 'Admin' },
};

/** Why a session ended, from `session.revoked`'s reason. */
const END_REASONS = {
  logout: 'you signed out (on this or another device)',
  admin: 'an administrator signed you out',
  expired: 'it expired',
  password_changed: 'your password was changed',
  disabled: 'your account was disabled',
  deleted: 'it was removed on the server',
};

/** Why a sign-in through a provider failed, from `#/signin?error=<code>`. */
const PROVIDER_ERRORS = {
  state: 'The sign-in could not be finished: it took too long, was already used, or was started in another browser. Please try again.',
  denied: 'The sign-in was cancelled or refused at the identity provider.',
  exchange: 'The identity provider did not confirm the sign-in. Please try again.',
  token: 'The identity provider\'s answer could not be verified, so you were not signed in.',
  disabled: 'Your account is disabled.',
  unavailable: 'The identity provider or the server is not answering right now. Try again in a moment.',
  account: 'Your account could not be set up. Ask an administrator.',
  provider: 'That way of signing in is not available.',
};

const root = document.getElementById('app');
let shell = null; // the signed-in frame: {nav, badge, main, unsubscribe}
let view = null; // the mounted view: {el, destroy?}
let signInNotice = null; // shown once on the next sign-in screen: {kind, text}
let bootRetry = null;

/**
 * `#/signin?error=<code>` (where a failed provider sign-in lands): the
 * sentence for it, shown on the sign-in screen, and the address back to `#/`.
 */
function takeProviderError() {
  const match = location.hash.match(/^#\/signin(?:\?(.*))?$/);
  if (!match) return null;
  history.replaceState(null, '', '#/');
  const code = new URLSearchParams(match[1] ?? '').get('error');
  if (!code) return null;
  return { kind: 'error', text: PROVIDER_ERRORS[code] ?? 'Signing in through the identity provider failed.' };
}

function routePath() {
  const path = location.hash.replace(/^#/, '') || '/';
  return Object.hasOwn(ROUTES, path) ? path : '/';
}

// ---------------------------------------------------------------------------
// Session lifecycle

/** GET /api/auth/me: signed in, signed out, or no answer (then the page retries by itself). */
async function boot() {
  clearTimeout(bootRetry);
  signInNotice = takeProviderError() ?? signInNotice;
  let me;
  try {
    me = await tether.me();
  } catch (error) {
    showUnreachable(error);
    return;
  }
  if (me) signedIn(me.user, me.session);
  else showSignIn();
}

function signedIn(user, session) {
  state.user = user;
  state.session = session ?? null;
  // Connecting first, so the shell's badge starts at "Connecting".
  tether.connect();
  render();
}

// The socket's events, for as long as the page lives. session.revoked needs
// nothing here: the client ends the session and says so with signedOut.
tether.on('state', (status) => emit('connection', status));
tether.on('signedOut', ({ reason }) => sessionEnded(reason));
tether.on('hello', ({ user, session }) => {
  if (!state.user) return;
  state.session = session;
  updateUser(user);
});
tether.on('permissions.changed', ({ permissions }) => {
  updateUser({ ...state.user, permissions: permissions ?? [] });
  // The event names permissions only; ask for the roles behind them.
  tether.request('whoami').then(({ user }) => updateUser(user), () => {});
});
tether.on('chat.message', (message) => {
  if (!state.user) return;
  state.chat.push(message);
  if (state.chat.length > 500) state.chat.splice(0, state.chat.length - 500);
  emit('chat', message);
});
tether.on('session.expiring', (data) => emit('expiring', data));

function updateUser(user) {
  if (!state.user || !user) return;
  const before = JSON.stringify(state.user);
  state.user = { ...state.user, ...user };
  if (JSON.stringify(state.user) !== before) emit('user', state.user);
}

function sessionEnded(reason) {
  if (!state.user) return;
  const why = END_REASONS[reason] ?? 'it is no longer valid';
  leave({ kind: 'warning', text: `Your session was ended: ${why}.` });
}

async function signOut() {
  try {
    await tether.signOut();
  } catch (error) {
    // Still signed in on the server (the client has reconnected): say so and stay.
    shell?.alert(`Could not sign out. ${describe(error)}`);
    return;
  }
  history.replaceState(null, '', '#/');
  leave({ kind: 'info', text: 'You have signed out.' });
}

/** Drops everything the page knew about the session and shows the sign-in screen. */
function leave(notice) {
  tether.close();
  clearState();
  signInNotice = notice;
  render();
}

// ---------------------------------------------------------------------------
// Screens

function render({ focus = false } = {}) {
  view?.destroy?.();
  view = null;
  if (!state.user) {
    shell?.unsubscribe();
    shell = null;
    showSignIn();
    return;
  }
  if (!shell) buildShell();
  shell.update();
  const path = routePath();
  view = ROUTES[path].view({ signOut });
  replace(shell.main, view.el);
  root.removeAttribute('aria-busy');
  if (focus) view.el.querySelector('h1')?.focus();
}

function showSignIn() {
  shell = null;
  view?.destroy?.();
  const notice = signInNotice;
  signInNotice = null;
  view = signInView({
    notice,
    onSignedIn: (user) => signedIn(user, null),
  });
  replace(root, h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'tether')),
    h('main', { class: 'view' }, view.el));
  root.removeAttribute('aria-busy');
  view.focus();
}

/** The server did not answer /api/auth/me: say so, and try again by itself. */
function showUnreachable(error, attempt = 0) {
  const delay = Math.min(30, 2 ** attempt * 2);
  const retry = h('button', { type: 'button', onclick: () => boot() }, 'Try again now');
  replace(root,
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'tether')),
    h('main', { class: 'view' },
      h('section', { class: 'card narrow', dataset: { view: 'unreachable' } },
        h('h1', {}, 'Cannot reach the server'),
        h('p', { role: 'alert' }, describe(error), ` This page tries again in ${delay} s.`),
        retry)));
  root.removeAttribute('aria-busy');
  bootRetry = setTimeout(async () => {
    let me;
    try {
      me = await tether.me();
    } catch (e) {
      showUnreachable(e, attempt + 1);
      return;
    }
    if (me) signedIn(me.user, me.session);
    else showSignIn();
  }, delay * 1000);
}

function buildShell() {
  const nav = h('ul', { class: 'nav-links' });
  const badge = h('span', { class: 'badge', role: 'status', 'aria-live': 'polite', dataset: { state: 'connecting' } });
  const who = h('span', { class: 'who' });
  const alertBox = h('div', { class: 'alerts', 'aria-live': 'assertive' });
  const main = h('main', { class: 'view', id: 'main', tabindex: '-1' });
  const notice = expiringNotice();

  const showStatus = (status) => {
    badge.dataset.state = status;
    badge.textContent = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', ended: 'Ended' }[status] ?? status;
    badge.title = `Connection: ${status}`;
  };
  const update = () => {
    const path = routePath();
    const links = Object.entries(ROUTES)
      .filter(([p]) => p !== '/admin' || canAdmin())
      .map(([p, { label }]) => h('li', {}, h('a', { href: `#${p}`, 'aria-current': p === path ? 'page' : null }, label)));
    replace(nav, links);
    who.textContent = state.user.username;
  };
  showStatus(tether.state);
  const unsubscribe = [on('connection', showStatus), on('user', update), notice.unsubscribe];

  replace(root,
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/' }, 'tether'),
      h('nav', { 'aria-label': 'Main' }, nav),
      h('div', { class: 'account' },
        badge,
        who,
        h('button', { type: 'button', class: 'secondary', onclick: signOut }, 'Sign out'))),
    alertBox,
    notice.el,
    main);
  shell = {
    main,
    update,
    alert: (text) => replace(alertBox, h('p', { class: 'notice error', role: 'alert' }, text)),
    unsubscribe: () => unsubscribe.forEach((u) => u()),
  };
}

window.addEventListener('hashchange', () => {
  if (state.user) render({ focus: true });
  // Signed out: the hash is where sign-in will take you; the form stays.
});

boot();
