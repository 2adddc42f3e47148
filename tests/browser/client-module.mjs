// The client module (web/tether-client.js) as an integrator's page uses it,
// in every browser: part of the scenario (scenario.mjs runs these steps), so
// both drivers run them. The steps use a page of the app's origin whose app is
// signed out and idle; the page imports /tether-client.js itself and drives a
// Tether of its own, kept in `window.__client` between steps with a log of
// every event it emitted. The admin side is the REST API, from node.

import { adminApi, check, waitInPage } from './common.mjs';

/** The events the page's client records, in order. */
const LOGGED = ['state', 'hello', 'permissions.changed', 'session.revoked', 'signedOut'];

/** Runs the client module's steps in `page`, signed in as `user` (whose other sessions are over). */
export async function clientModuleSteps({ step, page, user, driver }) {
  let api;
  let userId;

  await step('tether-client.js in a page: sign in, connect, hello, a request, "forbidden" as a TetherError', async () => {
    const signedIn = await page.eval(async ({ name, password, logged }) => {
      const { Tether, TetherError } = await import('/tether-client.js');
      const tether = new Tether({ autoRefresh: true });
      const log = [];
      for (const event of logged) tether.on(event, (data) => log.push({ event, data }));
      window.__client = { tether, TetherError, log, socketsBefore: window.__sockets.length };
      const providers = await tether.providers();
      const before = await tether.me();
      const signedInAs = await tether.signIn(name, password);
      const me = await tether.me();
      let admin = null;
      try {
        await tether.rest('GET', '/api/admin/users');
      } catch (e) {
        admin = { tetherError: e instanceof TetherError, status: e.status, code: e.code };
      }
      tether.connect();
      return { providers, before, signedInAs: signedInAs.username, me: me && { user: me.user.username, session: me.session.id }, admin };
    }, { name: user.name, password: user.password, logged: LOGGED });
    const { providers, before, signedInAs, me, admin } = signedIn;
    check(JSON.stringify(providers) === '[{"id":"password","kind":"password"}]', `providers(): ${JSON.stringify(providers)}`);
    check(before === null, `me() before sign-in: ${JSON.stringify(before)}`);
    check(signedInAs === user.name && me?.user === user.name, `signIn/me: ${JSON.stringify(signedIn)}`);
    check(admin?.tetherError && admin.status === 403 && admin.code === 'forbidden', `a REST 403: ${JSON.stringify(admin)}`);

    const hello = await waitInPage(page, 'the client\'s hello', () => window.__client.log.find((e) => e.event === 'hello')?.data);
    check(hello.user?.username === user.name && hello.session?.id === me.session, `hello: ${JSON.stringify(hello)}`);

    const asked = await page.eval(async () => {
      const { tether, TetherError, log } = window.__client;
      const pong = await tether.request('ping');
      const { text } = await tether.request('messages.protected', {}, { timeoutMs: 5_000 });
      let denied = null;
      try {
        await tether.request('messages.admin');
      } catch (e) {
        denied = { tetherError: e instanceof TetherError, status: e.status, code: e.code, message: e.message };
      }
      const states = log.filter((e) => e.event === 'state').map((e) => e.data);
      return { pong, text, denied, states, state: tether.state };
    });
    check(asked.pong === 'pong', `ping: ${JSON.stringify(asked.pong)}`);
    check(asked.text.includes(`Hello, ${user.name}`), `messages.protected: ${asked.text}`);
    const { denied } = asked;
    check(denied?.tetherError && denied.code === 'forbidden' && denied.status === null && denied.message === 'Permission denied',
      `messages.admin without the permission: ${JSON.stringify(denied)}`);
    check(JSON.stringify(asked.states) === '["connecting","live"]' && asked.state === 'live', `states: ${asked.states}, now ${asked.state}`);
  });

  await step('tether-client.js: permissions.changed when an admin changes the roles, then the new permission works', async () => {
    api = await adminApi();
    const res = await api('GET', '/api/admin/users');
    check(res.status === 200, `GET /api/admin/users: HTTP ${res.status}`);
    userId = (await res.json()).users.find((u) => u.username === user.name)?.id;
    check(userId, `no user ${user.name}`);
    const put = await api('PUT', `/api/admin/users/${userId}/roles`, { roles: ['user', 'messages-admin'] });
    check(put.status === 200, `PUT roles: HTTP ${put.status} ${await put.text()}`);

    const permissions = await waitInPage(page, 'permissions.changed in the client', () => window.__client.log
      .find((e) => e.event === 'permissions.changed')?.data.permissions);
    check(permissions.includes('read:admin-messages'), `permissions.changed: ${permissions}`);
    const text = await page.eval(() => window.__client.tether.request('messages.admin').then((r) => r.text));
    check(text.includes('Admin eyes only'), `messages.admin after the change: ${text}`);
  });

  await step('tether-client.js: a socket the server drops comes back by itself', async () => {
    // As the app's reconnect step: a frame over TETHER_WS_MAX_MESSAGE_BYTES
    // makes the server close the socket (1009), not the end of the session.
    const opened = await page.eval(() => {
      const client = window.__client;
      client.mark = client.log.length;
      window.__sockets.at(-1).send('x'.repeat(70_000));
      return window.__sockets.length - client.socketsBefore;
    });
    check(opened === 1, `the client should have opened one socket in this page, saw ${opened}`);
    await waitInPage(page, 'a new hello after the drop', () => window.__client.log
      .slice(window.__client.mark).some((e) => e.event === 'hello'));
    const after = await page.eval(async () => {
      const { tether, log, mark, socketsBefore } = window.__client;
      const { text } = await tether.request('messages.protected');
      return {
        events: log.slice(mark).map((e) => (e.event === 'state' ? e.data : e.event)),
        sockets: window.__sockets.length - socketsBefore,
        text,
      };
    });
    check(JSON.stringify(after.events) === '["reconnecting","live","hello"]', `events after the drop: ${after.events}`);
    check(after.sockets === 2, `expected a second socket, the client opened ${after.sockets}`);
    check(after.text.includes(`Hello, ${user.name}`), `a request after the reconnect: ${after.text}`);
  });

  await step('tether-client.js autoRefresh: an idle session.expiring is answered with session.refresh, an absolute one is not', async () => {
    // The server sends session.expiring only near a deadline, which this run's
    // sessions never reach: the two events are handed to the socket's message
    // handler as if they came from the server; the server's reply is real.
    const seen = await page.eval(async () => {
      const ws = window.__sockets.at(-1);
      const sent = [];
      const replies = [];
      ws.send = (frame) => {
        sent.push(JSON.parse(frame));
        WebSocket.prototype.send.call(ws, frame);
      };
      ws.addEventListener('message', (e) => replies.push(JSON.parse(e.data)));
      const expiring = (data) => ws.onmessage(new MessageEvent('message', { data: JSON.stringify({ event: 'session.expiring', data }) }));
      expiring({ in_secs: 30, kind: 'absolute' });
      expiring({ in_secs: 30, kind: 'idle' });
      const answer = () => replies.find((r) => sent.some((frame) => frame.id === r.re));
      for (let waited = 0; !answer() && waited < 5_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      delete ws.send;
      return { sent: sent.map((frame) => frame.type), answer: answer() ?? null };
    });
    check(JSON.stringify(seen.sent) === '["session.refresh"]', `frames the client sent: ${seen.sent}`);
    check(seen.answer?.ok === true && typeof seen.answer.data?.expires_at === 'string', `the server's reply: ${JSON.stringify(seen.answer)}`);
  });

  await step('tether-client.js: an admin revokes the session; signedOut says why, once', async () => {
    const res = await api('GET', `/api/admin/sessions?user_id=${userId}`);
    check(res.status === 200, `GET /api/admin/sessions: HTTP ${res.status}`);
    const { sessions } = await res.json();
    check(sessions.length === 1, `expected one session of ${user.name} (the client's), saw ${sessions.length}`);
    check(driver.userAgent.test(sessions[0].user_agent ?? ''), `the session is not ${driver.name}'s: ${sessions[0].user_agent}`);
    const revoked = await api('DELETE', `/api/admin/sessions/${encodeURIComponent(sessions[0].id)}`);
    check(revoked.status === 204, `DELETE /api/admin/sessions/{id}: HTTP ${revoked.status}`);

    const signedOut = await waitInPage(page, 'signedOut in the client', () => window.__client.log
      .find((e) => e.event === 'signedOut')?.data);
    check(signedOut.reason === 'admin', `signedOut: ${JSON.stringify(signedOut)}`);
    const after = await page.eval(async () => {
      const { tether, TetherError, log, socketsBefore } = window.__client;
      let ping = null;
      try {
        await tether.request('ping');
      } catch (e) {
        ping = { tetherError: e instanceof TetherError, code: e.code };
      }
      const me = await tether.me();
      return {
        events: log.map((e) => e.event),
        revoked: log.find((e) => e.event === 'session.revoked')?.data,
        state: tether.state,
        ping,
        me,
        sockets: window.__sockets.length - socketsBefore,
      };
    });
    const tail = after.events.slice(-3);
    check(JSON.stringify(tail) === '["session.revoked","state","signedOut"]', `the last events: ${tail}`);
    check(after.revoked?.reason === 'admin', `session.revoked: ${JSON.stringify(after.revoked)}`);
    check(after.events.filter((e) => e === 'signedOut').length === 1, `signedOut more than once: ${after.events}`);
    check(after.state === 'ended', `state after signedOut: ${after.state}`);
    check(after.ping?.tetherError && after.ping.code === 'not_connected', `a request after signedOut: ${JSON.stringify(after.ping)}`);
    check(after.me === null, `me() after the revocation: ${JSON.stringify(after.me)}`);
    check(after.sockets === 2, `the client reconnected after the revocation (${after.sockets} sockets)`);
  });
}
