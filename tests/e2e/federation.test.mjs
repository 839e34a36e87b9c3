// Upstream sign-in against real counterparts: npm `oidc-provider` as the upstream OpenID
// provider and a GitHub-style OAuth 2.0 server (tests/e2e/lib/upstream.mjs), both on
// loopback ports. The protocol refusals (replayed state, wrong nonce, foreign iss, tampered
// ID token) are covered over real HTTP by crates/tessera/tests/it/federation.rs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { scenario, clickAndWait, pathOf } from './lib/tessera.mjs';
import { createUser, createClient, startCallbackServer, discover, newChecks } from './lib/oauth.mjs';
import { startOidcProvider, startGitHubStyle, CLIENT_ID, CLIENT_SECRET } from './lib/upstream.mjs';

async function addIdp(server, args) {
  return server.cli(['idp', 'create', ...args, '--client-id', CLIENT_ID, '--client-secret-stdin'], { stdin: `${CLIENT_SECRET}\n` });
}

/** At the oidc-provider development login: any login name, then the consent page. */
async function signInUpstream(page, login) {
  await page.waitForSelector('input[name=login]', { timeout: 15_000 });
  await page.fill('input[name=login]', login);
  if (await page.locator('input[name=password]').count()) await page.fill('input[name=password]', 'anything');
  await clickAndWait(page, page.locator('button[type=submit]'));
  if (await page.locator('button:has-text("Continue")').count()) {
    await clickAndWait(page, page.locator('button:has-text("Continue")'));
  }
}

test('a relying party\'s sign-in goes through the upstream OpenID provider: user created just in time, identity listed, local sub and amr fed', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const callback = `${server.url}/login/upstream/corp/callback`;
    const op = await startOidcProvider([callback]);
    const cb = await startCallbackServer();
    try {
      const created = await addIdp(server, ['--name', 'corp', '--issuer', op.issuer, '--jit', '--domain', 'corp.example']);
      assert.equal(created.name, 'corp');
      // The CLI runs without the server's bound port (listen 127.0.0.1:0), so only the path is
      // compared; with a configured issuer the whole URL is the server's.
      assert.equal(new URL(created.callback_url).pathname, new URL(callback).pathname, 'the callback URL is <issuer>/login/upstream/<name>/callback');
      const listed = await server.cli(['idp', 'list']);
      assert.equal(listed.providers.length, 1);
      assert.ok(!JSON.stringify(listed).includes(CLIENT_SECRET), 'the client secret is never shown');

      const redirectUri = cb.url('/cb');
      const rp = await createClient(server, { redirectUris: [redirectUri], skipConsent: true, scopes: ['openid', 'profile', 'email'] });
      const config = await discover(server.url, rp.client_id, {}, client.ClientSecretBasic(rp.client_secret));
      const checks = await newChecks();
      const authUrl = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri, scope: 'openid profile email', code_challenge: checks.codeChallenge,
        code_challenge_method: 'S256', state: checks.state, nonce: checks.nonce,
      });
      const context = await newContext();
      const page = await context.newPage();
      await page.goto(String(authUrl));
      assert.equal(pathOf(page), '/login');
      assert.equal(await page.locator('a:has-text("Continue with corp")').count(), 1, 'the login page offers the provider');
      // Home-realm discovery: an address in the claimed domain goes to the provider.
      await page.fill('#username', 'alice@corp.example');
      await clickAndWait(page, page.locator('form[action="/login"] button[type=submit]'));
      await page.waitForURL((u) => u.href.startsWith(op.issuer), { timeout: 15_000 });
      await signInUpstream(page, 'alice');
      await page.waitForURL((u) => u.href.startsWith(cb.base), { timeout: 15_000 });
      const back = new URL(page.url());
      assert.equal(back.searchParams.get('state'), checks.state, 'the OAuth request the login page carried continued');

      const tokens = await client.authorizationCodeGrant(config, back, {
        pkceCodeVerifier: checks.pkceCodeVerifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true,
      });
      const claims = tokens.claims();
      const local = await server.cli(['user', 'show', '--username', 'alice']);
      assert.equal(claims.sub, local.id, 'the ID token carries the local sub');
      assert.notEqual(claims.sub, 'alice', 'not the upstream subject');
      assert.deepEqual(claims.amr, ['fed'], `amr of an upstream sign-in: ${JSON.stringify(claims.amr)}`);

      await page.goto(`${server.url}/account`);
      assert.equal(await page.textContent('#account-username'), 'alice', 'a local user was created just in time');
      assert.match(await page.textContent('#identities'), /corp/, 'the account page lists the linked identity');
    } finally {
      await cb.close();
      await op.close();
    }
  });
});

test('an upstream address held by a local account is linked only after its password', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const callback = `${server.url}/login/upstream/corp/callback`;
    const op = await startOidcProvider([callback], { verified: () => false });
    try {
      await addIdp(server, ['--name', 'corp', '--issuer', op.issuer, '--jit', '--trust-email']);
      const bob = { username: 'bob', email: 'bob@corp.example', name: 'Bob', password: 'correct horse battery staple' };
      await createUser(server, bob);
      const context = await newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/login`);
      await clickAndWait(page, page.locator('a:has-text("Continue with corp")'));
      await signInUpstream(page, 'bob');
      await page.waitForURL((u) => u.pathname === '/login/link', { timeout: 15_000 });
      assert.equal(await page.textContent('#link-username'), 'bob');
      const cookies = await context.cookies(server.url);
      assert.ok(!cookies.some((c) => c.name === 'tessera_session'), 'no session before the local account is proved');
      await page.fill('#password', 'wrong password entirely');
      await clickAndWait(page, page.locator('button[type=submit]'));
      assert.equal(pathOf(page), '/login/link');
      await page.fill('#password', bob.password);
      await clickAndWait(page, page.locator('button[type=submit]'));
      assert.equal(pathOf(page), '/account');
      assert.equal(await page.textContent('#account-username'), 'bob', 'linked to the local account, not a new one');
      assert.match(await page.textContent('#identities'), /corp/);
    } finally {
      await op.close();
    }
  });
});

test('a GitHub-style provider signs in end to end with the verified primary address', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const hub = await startGitHubStyle({
      user: { id: 583231, login: 'octocat', name: 'The Octocat', email: null },
      emails: [
        { email: 'old@octo.example', primary: false, verified: true },
        { email: 'unverified@octo.example', primary: false, verified: false },
        { email: 'octocat@octo.example', primary: true, verified: true },
      ],
    });
    try {
      const created = await addIdp(server, [
        '--name', 'hub', '--authorization-endpoint', `${hub.base}/authorize`, '--token-endpoint', `${hub.base}/token`,
        '--userinfo-endpoint', `${hub.base}/user`, '--emails-endpoint', `${hub.base}/user/emails`, '--scope', 'read:user', '--jit',
      ]);
      assert.equal(new URL(created.callback_url).pathname, '/login/upstream/hub/callback');
      const context = await newContext();
      const page = await context.newPage();
      await page.goto(`${server.url}/login`);
      await clickAndWait(page, page.locator('a:has-text("Continue with hub")'));
      await page.waitForURL((u) => u.pathname === '/account', { timeout: 15_000 });
      assert.equal(await page.textContent('#account-username'), 'octocat');
      const user = await server.cli(['user', 'show', '--username', 'octocat']);
      assert.equal(user.email, 'octocat@octo.example', 'the primary, verified address is the one used');
      assert.match(await page.textContent('#identities'), /hub/);
      assert.ok(hub.requests.includes('GET /user/emails'), 'the address list was read');
    } finally {
      await hub.close();
    }
  });
});

test('with --vault-tokens the upstream access token is kept, and only a client allowed to exchange gets it', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const callback = `${server.url}/login/upstream/corp/callback`;
    const op = await startOidcProvider([callback]);
    const cb = await startCallbackServer();
    try {
      await addIdp(server, ['--name', 'corp', '--issuer', op.issuer, '--jit', '--vault-tokens']);
      const redirectUri = cb.url('/cb');
      const allowed = await server.cli(['client', 'create', '--name', 'Mail reader', '--redirect-uri', redirectUri, '--skip-consent', '--token-exchange', 'corp']);
      const plain = await server.cli(['client', 'create', '--name', 'Plain', '--redirect-uri', redirectUri, '--skip-consent']);
      const config = await discover(server.url, allowed.client_id, {}, client.ClientSecretBasic(allowed.client_secret));
      const checks = await newChecks();
      const authUrl = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri, scope: 'openid', code_challenge: checks.codeChallenge,
        code_challenge_method: 'S256', state: checks.state, nonce: checks.nonce,
      });
      const context = await newContext();
      const page = await context.newPage();
      await page.goto(String(authUrl));
      await clickAndWait(page, page.locator('a:has-text("Continue with corp")'));
      await signInUpstream(page, 'carol');
      await page.waitForURL((u) => u.href.startsWith(cb.base), { timeout: 15_000 });
      const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
        pkceCodeVerifier: checks.pkceCodeVerifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true,
      });

      await page.goto(`${server.url}/account`);
      assert.match(await page.textContent('body'), /corp/, 'the account page shows the kept tokens');

      const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
      const params = {
        subject_token: tokens.access_token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        requested_token_type: 'urn:tessera:params:oauth:token-type:upstream:corp',
      };
      const exchanged = await client.genericGrantRequest(config, GRANT, params);
      assert.equal(exchanged.issued_token_type, params.requested_token_type);
      // The upstream itself accepts what came out of the vault: it is its own access token.
      const meta = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
      const info = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${exchanged.access_token}` } });
      assert.equal(info.status, 200, 'the upstream accepts the exchanged token');
      assert.equal((await info.json()).sub, 'carol');

      const plainConfig = await discover(server.url, plain.client_id, {}, client.ClientSecretBasic(plain.client_secret));
      await assert.rejects(() => client.genericGrantRequest(plainConfig, GRANT, params), (e) => {
        assert.equal(e.error, 'unauthorized_client');
        return true;
      }, 'a client not allowed the exchange gets nothing');
    } finally {
      await cb.close();
      await op.close();
    }
  });
});
