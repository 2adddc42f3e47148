// A real OpenID Provider (npm oidc-provider) for tether's OIDC tests.
//
// Started by tests/api/oidc/ with `node provider.mjs` and the settings as JSON
// in OIDC_TEST_CONFIG: {client_id, client_secret, redirect_uri,
// backchannel_logout_uri}. It listens on a random loopback port and prints
// `READY <issuer>` once it answers. One confidential client
// (client_secret_basic), PKCE required, back-channel logout with `sid`, a
// `tether_roles` claim, and an interaction that approves at once as the
// account the test chose last.
//
// Test-only control routes (never part of a real provider):
//   POST /__test/account            {sub, preferred_username?, email?, tether_roles?}
//        the account the next sign-in approves (and its claims from then on)
//   POST /__test/backchannel-logout {sub}
//        sends tether a logout token for that account's latest provider
//        session, as the provider does when the user signs out there;
//        answers {"delivered":true} or {"delivered":false,"error":"…"}

import http from 'node:http';
import Provider from 'oidc-provider';

const settings = JSON.parse(process.env.OIDC_TEST_CONFIG ?? '{}');
const accounts = new Map();
let current = null;
/** sub → the provider's `sid` of its latest sign-in through the client. */
const latestSid = new Map();

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: settings.client_id,
    client_secret: settings.client_secret,
    redirect_uris: [settings.redirect_uri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    backchannel_logout_uri: settings.backchannel_logout_uri,
    backchannel_logout_session_required: true,
  }],
  // PKCE for every client, confidential ones included.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
  },
  claims: {
    openid: ['sub', 'tether_roles'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
  },
  // Claims of the granted scopes in the ID token itself, not only at userinfo.
  conformIdTokenClaims: false,
  cookies: { keys: ['tether-oidc-test-cookie-key'] },
  // The provider refuses to call special-use addresses (SSRF protection);
  // tether under test is on loopback, so its back-channel URL is one.
  fetch: (url, options) => {
    const { dispatcher: _loopbackRefused, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, sub) {
    const claims = accounts.get(sub);
    if (!claims) return undefined;
    return { accountId: sub, claims: async () => ({ ...claims }) };
  },
});
provider.proxy = false;

provider.on('authorization.success', (ctx) => {
  const { session } = ctx.oidc;
  if (session?.accountId) {
    latestSid.set(session.accountId, session.sidFor(settings.client_id));
  }
});

// The interaction: approve at once, as `current`.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    if (!current) throw new Error('no account chosen (POST /__test/account first)');
    result = { login: { accountId: current } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    result = { consent: { grantId: await grant.save() } };
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.redirect(to);
});

const callback = provider.callback();
server.on('request', async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/__test/account') {
      const claims = await readJson(req);
      accounts.set(claims.sub, claims);
      current = claims.sub;
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && req.url === '/__test/backchannel-logout') {
      const { sub } = await readJson(req);
      const client = await provider.Client.find(settings.client_id);
      let body;
      try {
        await client.backchannelLogout(sub, latestSid.get(sub));
        body = { delivered: true };
      } catch (err) {
        body = { delivered: false, error: String(err.message) };
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
  } catch (err) {
    res.writeHead(500).end(String(err));
    return;
  }
  callback(req, res);
});

process.stdout.write(`READY ${issuer}\n`);
// Ends with the test that started it (stdin closes when the test drops it).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
