// The sign-in screen: a labelled form, a "Sign in with NAME" link per
// OpenID Connect provider (from GET /api/auth/providers), and a clear
// sentence for each way sign-in can fail (bad credentials, rate limited with
// the wait, server down).

import { tether, describe } from '../client.js';
import { h, replace } from '../dom.js';

/**
 * @param {object} opts
 * @param {{kind: string, text: string}|null} opts.notice why we are here (session ended, signed out)
 * @param {(user: object) => void} opts.onSignedIn
 */
export function signInView({ notice, onSignedIn }) {
  const username = h('input', { id: 'signin-username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'signin-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('div', { class: 'form-error', id: 'signin-error', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  let countdown = null;

  const showError = (...text) => replace(error, h('p', { class: 'notice error', role: 'alert' }, ...text));

  /** 429: count the wait down, and keep the button off until it is over. */
  const rateLimited = (secs, serverMessage) => {
    clearInterval(countdown);
    if (!secs) {
      showError(serverMessage || 'Too many sign-in attempts. Wait a moment, then try again.');
      return;
    }
    let left = secs;
    const tick = () => {
      if (left <= 0) {
        clearInterval(countdown);
        submit.disabled = false;
        showError('You can try again now.');
        return;
      }
      submit.disabled = true;
      const wait = left > 90 ? `${Math.ceil(left / 60)} min` : `${left} s`;
      showError(`Too many sign-in attempts. Try again in ${wait}.`);
      left -= 1;
    };
    tick();
    countdown = setInterval(tick, 1000);
  };

  const onSubmit = async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    clearInterval(countdown);
    replace(error);
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      const user = await tether.signIn(username.value.trim(), password.value);
      clearInterval(countdown);
      password.value = '';
      onSignedIn(user);
      return;
    } catch (e) {
      submit.disabled = false;
      submit.textContent = 'Sign in';
      if (e.status === 401) {
        showError('Wrong username or password.');
        password.value = '';
        password.focus();
      } else if (e.status === 429) {
        rateLimited(e.retryAfter, e.message);
      } else if (e.unreachable) {
        showError(describe(e));
      } else {
        showError(e.message);
      }
    }
  };

  // Filled in once the server names its providers; empty for password only.
  const providers = h('div', { class: 'providers', id: 'signin-providers' });
  tether.providers().then((list) => {
    const links = list.filter((p) => p.kind === 'oidc' && p.start_url).map((p) => {
      // The deep link (this page's route) survives the round trip.
      const returnTo = `/${location.hash || '#/'}`;
      const href = `${p.start_url}?return_to=${encodeURIComponent(returnTo)}`;
      return h('a', { class: 'provider', href, dataset: { provider: p.id } }, `Sign in with ${p.name ?? p.id}`);
    });
    if (links.length) replace(providers, h('p', { class: 'or' }, 'or'), ...links);
  }, () => {});

  const el = h('section', { class: 'card narrow signin', dataset: { view: 'signin' } },
    h('h1', { tabindex: '-1' }, 'Sign in to tether'),
    notice && h('p', { class: `notice ${notice.kind}`, role: 'status', id: 'signin-notice' }, notice.text),
    h('form', { id: 'signin-form', onsubmit: onSubmit },
      h('div', { class: 'field' }, h('label', { for: username.id }, 'Username'), username),
      h('div', { class: 'field' }, h('label', { for: password.id }, 'Password'), password),
      error,
      h('div', { class: 'actions' }, submit)),
    providers);

  return {
    el,
    focus: () => username.focus(),
    destroy: () => clearInterval(countdown),
  };
}
