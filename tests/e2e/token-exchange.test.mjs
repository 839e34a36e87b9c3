// Token exchange (RFC 8693) of upstream tokens, through openid-client's genericGrantRequest:
// the CLI's --token-exchange allow-list, the grant in discovery, and the refusals a client
// sees. (The allowed exchange that returns a kept token needs a user who signed in through an
// upstream provider keeping tokens: federation.test.mjs does that against oidc-provider, and
// crates/tessera/tests/it/token_exchange.rs with tokens kept through TokenKeeper.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { ALICE, createUser, withServer, discover, postForm, CookieJar, jarSignIn, jarCode, expectOAuthError } from './lib/oauth.mjs';

const REDIRECT = 'https://rp.example.com:8443/cb';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const upstream = (name) => `urn:tessera:params:oauth:token-type:upstream:${name}`;

test('token exchange: the allow-list from the CLI, the grant in discovery, and each refusal through openid-client', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    await createUser(server, ALICE);
    const allowed = await server.cli(['client', 'create', '--name', 'Code search', '--redirect-uri', REDIRECT, '--skip-consent', '--token-exchange', 'github:repo,user:email']);
    const plain = await server.cli(['client', 'create', '--name', 'Plain', '--redirect-uri', REDIRECT, '--skip-consent']);
    const { clients } = await server.cli(['client', 'list']);
    const listed = clients.find((c) => c.id === allowed.client_id);
    assert.deepEqual(listed.token_exchange, [{ provider: 'github', scopes: ['repo', 'user:email'] }], 'the allow-list is kept');
    assert.ok(listed.grant_types.includes(GRANT), `the allow-list brings the grant: ${JSON.stringify(listed.grant_types)}`);

    const jar = new CookieJar();
    await jarSignIn(issuer, jar);
    const code = await jarCode(issuer, jar, { clientId: allowed.client_id, redirectUri: REDIRECT, scope: 'openid profile' });
    const tokens = await postForm(`${issuer}/oauth2/token`, {
      grant_type: 'authorization_code', code: code.code, redirect_uri: REDIRECT, code_verifier: code.verifier,
    }, { basic: [allowed.client_id, allowed.client_secret] });
    assert.equal(tokens.status, 200, tokens.text);

    const config = await discover(issuer, allowed.client_id, {}, client.ClientSecretBasic(allowed.client_secret));
    assert.ok(config.serverMetadata().grant_types_supported.includes(GRANT), 'discovery lists the grant');
    const params = { subject_token: tokens.json.access_token, subject_token_type: ACCESS_TOKEN, requested_token_type: upstream('github') };

    await expectOAuthError(() => client.genericGrantRequest(config, GRANT, params), 'invalid_grant', 'nothing is kept for the user', 400);
    await expectOAuthError(() => client.genericGrantRequest(config, GRANT, { ...params, requested_token_type: upstream('gitlab') }), 'invalid_target', 'a provider the client is not allowed', 400);
    await expectOAuthError(() => client.genericGrantRequest(config, GRANT, { ...params, scope: 'admin:org' }), 'invalid_scope', 'a scope the client is not allowed', 400);
    await expectOAuthError(() => client.genericGrantRequest(config, GRANT, { ...params, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }), 'invalid_request', 'another subject token type', 400);

    const plainConfig = await discover(issuer, plain.client_id, {}, client.ClientSecretBasic(plain.client_secret));
    await expectOAuthError(() => client.genericGrantRequest(plainConfig, GRANT, params), 'unauthorized_client', 'a client not allowed the grant', 400);
  });
});
