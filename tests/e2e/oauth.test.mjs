// OAuth 2.1 / OpenID Connect flows, driven by the real openid-client and jose.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import * as jose from 'jose';
import { scenario, signIn, pathOf, clickAndWait } from './lib/tessera.mjs';
import {
  ALICE, createUser, createClient, withServer, startCallbackServer, discover, newChecks,
  expectOAuthError, halfHash, browserAuthorize, postForm, describe,
} from './lib/oauth.mjs';

const FULL_SCOPE = 'openid profile email offline_access';

/** scenario() + a callback server + alice. */
async function oauthScenario(t, fn) {
  await scenario(t, {}, async (ctx) => {
    const cb = await startCallbackServer();
    try {
      await createUser(ctx.server, ALICE);
      await fn({ ...ctx, cb, issuer: ctx.server.url });
    } finally {
      await cb.close();
    }
  });
}

function jwksOf(config) {
  return jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
}

function scopeSet(s) {
  return new Set(String(s ?? '').split(' ').filter(Boolean));
}

/**
 * Builds an authorization URL with openid-client, drives it in `page`, checks
 * the authorization response and redeems the code with openid-client.
 * Resolves to { tokens, claims, result, checks, authUrl }.
 */
async function codeFlow(config, page, cb, {
  redirectUri, scope = FULL_SCOPE, user = ALICE, extra = {}, decision = 'allow',
} = {}) {
  const issuer = config.serverMetadata().issuer;
  const checks = await newChecks();
  const authUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: checks.codeChallenge,
    code_challenge_method: 'S256',
    state: checks.state,
    nonce: checks.nonce,
    ...extra,
  });
  assert.equal(`${authUrl.origin}${authUrl.pathname}`, `${issuer}/oauth2/authorize`);
  const result = await browserAuthorize(page, authUrl, cb.base, { user, decision });
  const back = result.url;
  assert.equal(`${back.origin}${back.pathname}`, redirectUri, `the browser is back at the redirect_uri: ${back}`);
  assert.equal(back.searchParams.get('state'), checks.state, 'state is echoed');
  assert.equal(back.searchParams.get('iss'), issuer, 'the authorization response carries iss (RFC 9207)');
  assert.ok(back.searchParams.get('code'), `a code is returned: ${back}`);
  const toClient = result.navigations.filter((n) => n.location && n.location.startsWith(redirectUri));
  assert.equal(toClient.length, 1, `exactly one redirect to the client: ${JSON.stringify(result.navigations)}`);
  assert.equal(toClient[0].status, 303, 'the authorization endpoint answers 303 See Other');
  assert.ok(toClient[0].url.startsWith(`${issuer}/oauth2/authorize`), `the redirect comes from the authorization endpoint: ${toClient[0].url}`);

  const tokens = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: checks.pkceCodeVerifier,
    expectedState: checks.state,
    expectedNonce: checks.nonce,
    idTokenExpected: true,
  });
  return { tokens, claims: tokens.claims(), result, checks, authUrl };
}

/** Asserts the ID token and the access token of a code flow; resolves to the AT payload. */
async function checkUserTokens(config, tokens, { clientId, idTokenAlg, scope }) {
  const md = config.serverMetadata();
  const issuer = md.issuer;
  const JWKS = jwksOf(config);
  const now = Math.floor(Date.now() / 1000);

  assert.equal(tokens.token_type.toLowerCase(), 'bearer', 'token_type Bearer');
  assert.ok(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, `expires_in is a positive integer: ${tokens.expires_in}`);

  // ID token (openid-client validated iss, aud, exp, iat, nonce and, with
  // non-repudiation checks on, the signature; jose verifies it again).
  const claims = tokens.claims();
  const idHeader = jose.decodeProtectedHeader(tokens.id_token);
  if (idTokenAlg) assert.equal(idHeader.alg, idTokenAlg, `ID token alg is the client's registered ${idTokenAlg}`);
  assert.ok(md.id_token_signing_alg_values_supported.includes(idHeader.alg), `ID token alg ${idHeader.alg} is advertised`);
  assert.ok(idHeader.kid, 'the ID token names its key (kid)');
  const { payload: idp } = await jose.jwtVerify(tokens.id_token, JWKS, { issuer, audience: clientId });
  assert.equal(idp.iss, issuer);
  assert.ok(typeof claims.sub === 'string' && claims.sub.length > 0, 'sub');
  assert.ok(typeof claims.sid === 'string' && claims.sid.length > 0, `sid in the ID token: ${JSON.stringify(claims)}`);
  assert.ok(Number.isInteger(claims.auth_time), `auth_time in the ID token: ${JSON.stringify(claims)}`);
  assert.ok(claims.auth_time <= now + 5 && claims.auth_time > now - 600, `auth_time is recent: ${claims.auth_time} vs ${now}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  assert.ok(aud.includes(clientId), `aud contains the client_id: ${claims.aud}`);
  if (aud.length > 1) assert.equal(claims.azp, clientId, 'azp with several audiences');
  assert.equal(typeof claims.at_hash, 'string', `at_hash in the ID token: ${JSON.stringify(claims)}`);
  assert.equal(claims.at_hash, halfHash(tokens.access_token, idHeader.alg), `at_hash matches the access token (alg ${idHeader.alg})`);

  // Access token: a JWT profile (RFC 9068) access token.
  const { payload: at, protectedHeader: atHeader } = await jose.jwtVerify(tokens.access_token, JWKS, { issuer, typ: 'at+jwt' });
  assert.equal(atHeader.alg, 'EdDSA', 'access tokens are EdDSA-signed');
  assert.equal(at.client_id, clientId, 'access token client_id');
  assert.equal(at.sub, claims.sub, 'access token sub = ID token sub');
  assert.equal(at.sid, claims.sid, 'access token sid = ID token sid');
  assert.ok(at.aud !== undefined, 'access token has aud');
  assert.ok(typeof at.jti === 'string' && at.jti.length > 0, 'access token jti');
  assert.ok(Number.isInteger(at.iat) && Number.isInteger(at.exp) && at.exp > at.iat, 'iat < exp');
  assert.ok(at.exp > now, 'not expired');
  for (const s of scopeSet(scope)) assert.ok(scopeSet(at.scope).has(s), `access token scope "${at.scope}" has ${s}`);
  return at;
}

// ---------------------------------------------------------------------------

test('discovery documents and JWKS', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    const r = await fetch(`${issuer}/.well-known/openid-configuration`);
    assert.equal(r.status, 200, 'openid-configuration is 200');
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    const md = await r.json();
    assert.equal(md.issuer, issuer, 'issuer is the server URL without trailing slash');
    const ep = (p) => `${issuer}${p}`;
    assert.equal(md.authorization_endpoint, ep('/oauth2/authorize'));
    assert.equal(md.token_endpoint, ep('/oauth2/token'));
    assert.equal(md.userinfo_endpoint, ep('/oauth2/userinfo'));
    assert.equal(md.jwks_uri, ep('/oauth2/jwks'));
    assert.equal(md.introspection_endpoint, ep('/oauth2/introspect'));
    assert.equal(md.revocation_endpoint, ep('/oauth2/revoke'));
    assert.equal(md.end_session_endpoint, ep('/oauth2/logout'));
    assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
    assert.equal(md.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(md.response_types_supported, ['code']);
    for (const m of ['query', 'form_post']) assert.ok(md.response_modes_supported?.includes(m), `response mode ${m}`);
    for (const g of ['authorization_code', 'refresh_token', 'client_credentials']) {
      assert.ok(md.grant_types_supported?.includes(g), `grant type ${g}`);
    }
    assert.ok(!md.grant_types_supported.includes('password'), 'no password grant');
    assert.ok(!md.grant_types_supported.includes('implicit'), 'no implicit grant');
    for (const a of ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']) {
      assert.ok(md.token_endpoint_auth_methods_supported?.includes(a), `token endpoint auth ${a}`);
    }
    for (const a of ['RS256', 'ES256', 'EdDSA']) {
      assert.ok(md.id_token_signing_alg_values_supported?.includes(a), `ID token alg ${a}`);
    }
    assert.ok(!md.id_token_signing_alg_values_supported.includes('none'), 'alg none is not offered');
    assert.ok(Array.isArray(md.subject_types_supported) && md.subject_types_supported.length > 0, 'subject_types_supported (REQUIRED)');
    assert.ok(md.scopes_supported?.includes('openid'), 'scopes_supported has openid');

    // RFC 8414 metadata describes the same server.
    const r2 = await fetch(`${issuer}/.well-known/oauth-authorization-server`);
    assert.equal(r2.status, 200, 'oauth-authorization-server is 200');
    const as = await r2.json();
    for (const k of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'introspection_endpoint',
      'revocation_endpoint', 'code_challenge_methods_supported', 'response_types_supported', 'grant_types_supported']) {
      assert.deepEqual(as[k], md[k], `RFC 8414 ${k} agrees with the OIDC document`);
    }

    // The JWKS: public keys only, each with a kid.
    const jr = await fetch(md.jwks_uri);
    assert.equal(jr.status, 200);
    assert.match(jr.headers.get('content-type') ?? '', /^application\/(jwk-set\+)?json/);
    const jwks = await jr.json();
    assert.ok(Array.isArray(jwks.keys) && jwks.keys.length >= 3, `JWKS has keys for RS256, ES256, EdDSA: ${JSON.stringify(jwks)}`);
    const kids = new Set();
    for (const k of jwks.keys) {
      assert.ok(k.kid, `every key has a kid: ${JSON.stringify(k)}`);
      assert.ok(!kids.has(k.kid), `kids are unique (${k.kid})`);
      kids.add(k.kid);
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
        assert.equal(k[priv], undefined, `key ${k.kid} leaks no private member "${priv}"`);
      }
      if (k.use !== undefined) assert.equal(k.use, 'sig');
    }
    assert.ok(jwks.keys.some((k) => k.kty === 'RSA'), 'an RSA key');
    assert.ok(jwks.keys.some((k) => k.kty === 'EC' && k.crv === 'P-256'), 'a P-256 key');
    assert.ok(jwks.keys.some((k) => k.kty === 'OKP' && k.crv === 'Ed25519'), 'an Ed25519 key');

    // jose resolves every key through the remote set.
    const JWKS = jose.createRemoteJWKSet(new URL(md.jwks_uri));
    for (const k of jwks.keys) {
      const alg = k.alg ?? (k.kty === 'RSA' ? 'RS256' : k.kty === 'EC' ? 'ES256' : 'EdDSA');
      const key = await JWKS({ alg, kid: k.kid }, { payload: '', signature: '' });
      assert.equal(key.type, 'public', `jose resolves ${k.kid} to a public key`);
    }

    // openid-client accepts the document.
    const config = await discover(issuer, 'nobody', undefined, client.None());
    assert.equal(config.serverMetadata().issuer, issuer);
  });
});

test('authorization code + PKCE, confidential client (client_secret_basic)', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const redirectUri = cb.url('/cb');
    const c = await createClient(server, {
      name: 'Confidential RP', redirectUris: [redirectUri], skipConsent: true, idTokenAlg: 'RS256',
    });
    const config = await discover(issuer, c.client_id,
      { client_secret: c.client_secret, id_token_signed_response_alg: 'RS256' },
      client.ClientSecretBasic(c.client_secret));
    const page = await (await newContext()).newPage();
    const { tokens, claims, result } = await codeFlow(config, page, cb, { redirectUri, scope: 'openid profile email' });
    assert.equal(result.sawLogin, true, 'the browser went through the login form');
    assert.equal(result.sawConsent, false, 'no consent page for a --skip-consent client');
    await checkUserTokens(config, tokens, { clientId: c.client_id, idTokenAlg: 'RS256', scope: 'openid profile email' });

    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.sub, claims.sub);
    assert.equal(info.email, ALICE.email, 'userinfo email');
    assert.equal(info.name, ALICE.name, 'userinfo name');

    // The userinfo endpoint rejects a bad token the RFC 6750 way.
    const bad = await fetch(config.serverMetadata().userinfo_endpoint, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(bad.status, 401, 'userinfo with a bogus token is 401');
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer\b.*error="invalid_token"/i, 'WWW-Authenticate: Bearer error="invalid_token"');
  });
});

test('authorization code + PKCE, public client (none)', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const redirectUri = cb.url('/public/cb');
    const c = await createClient(server, { name: 'Public RP', redirectUris: [redirectUri], public: true, skipConsent: true });
    // Clients created by the CLI sign ID tokens with EdDSA unless told otherwise.
    const config = await discover(issuer, c.client_id, { id_token_signed_response_alg: 'EdDSA' }, client.None());
    const page = await (await newContext()).newPage();
    const { tokens, claims, result } = await codeFlow(config, page, cb, { redirectUri, scope: 'openid email' });
    assert.equal(result.sawLogin, true);
    await checkUserTokens(config, tokens, { clientId: c.client_id, idTokenAlg: 'EdDSA', scope: 'openid email' });

    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.sub, claims.sub);
    assert.equal(info.email, ALICE.email, 'email is released for scope email');
    assert.equal(info.name, undefined, `no profile claims without scope profile: ${JSON.stringify(info)}`);
    assert.equal(claims.name, undefined, 'no profile claims in the ID token without scope profile');
  });
});

test('refresh token rotation and reuse detection', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const redirectUri = cb.url('/cb');
    const c = await createClient(server, { name: 'Refreshing RP', redirectUris: [redirectUri], skipConsent: true });
    const config = await discover(issuer, c.client_id, c.client_secret, client.ClientSecretBasic(c.client_secret));
    const page = await (await newContext()).newPage();
    const { tokens, claims } = await codeFlow(config, page, cb, { redirectUri, scope: FULL_SCOPE });
    const rt1 = tokens.refresh_token;
    assert.equal(typeof rt1, 'string', `a refresh token for scope offline_access: ${JSON.stringify(Object.keys(tokens))}`);

    const second = await client.refreshTokenGrant(config, rt1);
    const rt2 = second.refresh_token;
    assert.equal(typeof rt2, 'string', 'refreshing returns a new refresh token');
    assert.notEqual(rt2, rt1, 'the refresh token is rotated');
    assert.notEqual(second.access_token, tokens.access_token, 'a new access token');
    const JWKS = jwksOf(config);
    const { payload: at2 } = await jose.jwtVerify(second.access_token, JWKS, { issuer, typ: 'at+jwt' });
    assert.equal(at2.sub, claims.sub);
    assert.equal(at2.client_id, c.client_id);
    for (const s of ['openid', 'profile', 'email']) assert.ok(scopeSet(at2.scope).has(s), `refreshed scope keeps ${s}: ${at2.scope}`);
    if (second.id_token) assert.equal(second.claims().sub, claims.sub, 'a refreshed ID token has the same sub');

    // Replaying the rotated token is refused, and kills the family.
    await expectOAuthError(() => client.refreshTokenGrant(config, rt1), 'invalid_grant', 'replayed refresh token', 400);
    await expectOAuthError(() => client.refreshTokenGrant(config, rt2), 'invalid_grant', 'newest refresh token after reuse', 400);

    const intro = await client.tokenIntrospection(config, rt2);
    assert.equal(intro.active, false, 'the newest refresh token of the revoked family is inactive');
  });
});

test('client credentials grant', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    const c = await createClient(server, { name: 'Service', grantTypes: ['client_credentials'], scopes: ['api:read'] });
    const config = await discover(issuer, c.client_id, c.client_secret, client.ClientSecretBasic(c.client_secret));
    const tokens = await client.clientCredentialsGrant(config, { scope: 'api:read' });
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok(tokens.expires_in > 0);
    assert.equal(tokens.id_token, undefined, 'no ID token without a user');
    assert.equal(tokens.refresh_token, undefined, 'no refresh token for client_credentials');
    if (tokens.scope !== undefined) assert.equal(tokens.scope, 'api:read', 'granted scope');

    const JWKS = jose.createRemoteJWKSet(new URL(`${issuer}/oauth2/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, JWKS, { issuer, typ: 'at+jwt' });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(payload.scope, 'api:read');
    assert.equal(payload.client_id, c.client_id);
    assert.ok(payload.sub, 'sub is present');
    assert.equal(payload.sid, undefined, 'no sid without a user session');
    assert.ok(payload.jti && payload.aud !== undefined && payload.exp > payload.iat);

    // A scope the client may not have.
    await expectOAuthError(() => client.clientCredentialsGrant(config, { scope: 'api:write' }), 'invalid_scope', 'unregistered scope', 400);

    // Wrong secret: 401 invalid_client with a Basic challenge.
    const r = await postForm(`${issuer}/oauth2/token`, { grant_type: 'client_credentials', scope: 'api:read' },
      { basic: [c.client_id, `${c.client_secret}x`] });
    assert.equal(r.status, 401, `wrong secret is 401:\n${describe(r)}`);
    assert.equal(r.json?.error, 'invalid_client');
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic\b/i, 'WWW-Authenticate: Basic after a failed Basic authentication');
    assert.match(r.headers.get('cache-control') ?? '', /no-store/);
  });
});

test('introspection and revocation', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const redirectUri = cb.url('/cb');
    const c = await createClient(server, { name: 'Introspecting RP', redirectUris: [redirectUri], skipConsent: true });
    const config = await discover(issuer, c.client_id, c.client_secret, client.ClientSecretBasic(c.client_secret));
    const page = await (await newContext()).newPage();
    const first = await codeFlow(config, page, cb, { redirectUri, scope: FULL_SCOPE });
    const second = await codeFlow(config, page, cb, { redirectUri, scope: FULL_SCOPE, user: undefined });
    const at1 = first.tokens.access_token;
    const rt1 = first.tokens.refresh_token;
    const at2 = second.tokens.access_token;
    assert.ok(rt1, 'a refresh token');

    // Introspection needs client authentication.
    const anon = await postForm(`${issuer}/oauth2/introspect`, { token: at1 });
    assert.equal(anon.status, 401, `introspection without client authentication is 401:\n${describe(anon)}`);

    const i1 = await client.tokenIntrospection(config, at1);
    assert.equal(i1.active, true, `the access token is active: ${JSON.stringify(i1)}`);
    assert.equal(i1.sub, first.claims.sub);
    assert.equal(i1.client_id, c.client_id);
    for (const s of ['openid', 'profile', 'email']) assert.ok(scopeSet(i1.scope).has(s), `introspected scope has ${s}: ${i1.scope}`);
    assert.ok(Number.isInteger(i1.exp) && i1.exp > Date.now() / 1000, 'exp');
    if (i1.iss !== undefined) assert.equal(i1.iss, issuer);

    const ir = await client.tokenIntrospection(config, rt1);
    assert.equal(ir.active, true, `the refresh token is active: ${JSON.stringify(ir)}`);
    assert.equal(ir.client_id, c.client_id);

    const garbage = await client.tokenIntrospection(config, 'definitely-not-a-token');
    assert.deepEqual(garbage, { active: false }, 'an unknown token is just {active:false}');

    // Revoking an unknown token is not an error (RFC 7009 2.2).
    await client.tokenRevocation(config, 'definitely-not-a-token');

    // Revoke the second access token: it alone goes inactive.
    await client.tokenRevocation(config, at2);
    assert.equal((await client.tokenIntrospection(config, at2)).active, false, 'a revoked access token is inactive');
    assert.equal((await client.tokenIntrospection(config, at1)).active, true, 'revoking one access token leaves another grant alone');

    // Revoke the first refresh token.
    await client.tokenRevocation(config, rt1);
    assert.equal((await client.tokenIntrospection(config, rt1)).active, false, 'a revoked refresh token is inactive');
    await expectOAuthError(() => client.refreshTokenGrant(config, rt1), 'invalid_grant', 'refresh with a revoked token', 400);
    const after = await client.tokenIntrospection(config, at1);
    t.diagnostic(`access token of the revoked refresh token's grant: active=${after.active} (RFC 7009 says SHOULD be revoked too)`);
  });
});

test('RP-initiated logout', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const redirectUri = cb.url('/cb');
    const postLogout = cb.url('/logged-out');
    const c = await createClient(server, {
      name: 'Logout RP', redirectUris: [redirectUri], postLogoutRedirectUris: [postLogout], skipConsent: true,
    });
    const config = await discover(issuer, c.client_id, c.client_secret, client.ClientSecretBasic(c.client_secret));
    const ctx = await newContext();
    const page = await ctx.newPage();
    const { tokens } = await codeFlow(config, page, cb, { redirectUri, scope: 'openid' });

    const state = client.randomState();
    const endUrl = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token, post_logout_redirect_uri: postLogout, state,
    });
    assert.equal(`${endUrl.origin}${endUrl.pathname}`, `${issuer}/oauth2/logout`);
    const navs = [];
    page.on('response', (r) => {
      if (r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()) {
        navs.push({ url: r.url(), status: r.status(), location: r.headers().location });
      }
    });
    await page.goto(endUrl.href);
    const landed = new URL(page.url());
    assert.equal(`${landed.origin}${landed.pathname}`, postLogout, `the browser lands on the post_logout_redirect_uri: ${landed}`);
    assert.equal(landed.searchParams.get('state'), state, 'state is echoed');
    assert.equal(navs[0]?.status, 303, `with a valid id_token_hint the logout endpoint redirects at once: ${JSON.stringify(navs)}`);
    assert.ok(navs[0].location?.startsWith(postLogout), 'straight to the post_logout_redirect_uri');

    await page.goto(`${issuer}/account`);
    assert.equal(pathOf(page), '/login', `the session is over: /account leads to /login (at ${page.url()})`);

    // And the OP no longer has a session for prompt=none.
    const checks = await newChecks();
    const none = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid', prompt: 'none', state: checks.state,
      code_challenge: checks.codeChallenge, code_challenge_method: 'S256',
    });
    await page.goto(none.href);
    const back = new URL(page.url());
    assert.equal(back.searchParams.get('error'), 'login_required', `prompt=none after logout: ${back}`);
  });
});

test('prompt=none with and without a session', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const redirectUri = cb.url('/cb');
    const c = await createClient(server, { name: 'Silent RP', redirectUris: [redirectUri], skipConsent: true });
    const config = await discover(issuer, c.client_id, c.client_secret, client.ClientSecretBasic(c.client_secret));

    // Signed in beforehand: a code without any UI.
    const ctx = await newContext();
    const page = await ctx.newPage();
    await signIn(page, issuer, ALICE.username, ALICE.password);
    assert.equal(pathOf(page), '/account', 'signed in');
    const { tokens, result } = await codeFlow(config, page, cb, { redirectUri, scope: 'openid', user: undefined, extra: { prompt: 'none' } });
    assert.equal(result.sawLogin, false);
    assert.equal(result.sawConsent, false);
    assert.ok(!result.navigations.some((n) => new URL(n.url).pathname === '/login'), 'no visit to /login');
    assert.equal(result.navigations.length, 2, `one redirect, straight to the client: ${JSON.stringify(result.navigations)}`);
    assert.ok(tokens.id_token);

    // No session: login_required at the redirect URI.
    const fresh = await (await newContext()).newPage();
    const checks = await newChecks();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid', prompt: 'none', state: checks.state, nonce: checks.nonce,
      code_challenge: checks.codeChallenge, code_challenge_method: 'S256',
    });
    const navs = [];
    fresh.on('response', (r) => {
      if (r.request().isNavigationRequest()) navs.push({ url: r.url(), status: r.status() });
    });
    await fresh.goto(url.href);
    const back = new URL(fresh.url());
    assert.equal(`${back.origin}${back.pathname}`, redirectUri, `back at the redirect_uri: ${back}`);
    assert.equal(back.searchParams.get('error'), 'login_required');
    assert.equal(back.searchParams.get('state'), checks.state, 'state is echoed with the error');
    assert.equal(back.searchParams.get('iss'), issuer, 'iss accompanies the error');
    assert.equal(back.searchParams.get('code'), null, 'no code');
    assert.ok(!navs.some((n) => new URL(n.url).pathname === '/login'), 'prompt=none never shows the login page');
    await expectOAuthError(
      () => client.authorizationCodeGrant(config, back, { pkceCodeVerifier: checks.pkceCodeVerifier, expectedState: checks.state }),
      'login_required', 'openid-client reading the error response',
    );
  });
});

test('single sign-on across two clients', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const uriA = cb.url('/a/cb');
    const uriB = cb.url('/b/cb');
    const a = await createClient(server, { name: 'RP A', redirectUris: [uriA], skipConsent: true });
    const b = await createClient(server, { name: 'RP B', redirectUris: [uriB], skipConsent: true, idTokenAlg: 'ES256' });
    const configA = await discover(issuer, a.client_id, a.client_secret, client.ClientSecretBasic(a.client_secret));
    const configB = await discover(issuer, b.client_id,
      { client_secret: b.client_secret, id_token_signed_response_alg: 'ES256' }, client.ClientSecretBasic(b.client_secret));
    const page = await (await newContext()).newPage();
    const A = await codeFlow(configA, page, cb, { redirectUri: uriA, scope: 'openid profile' });
    assert.equal(A.result.sawLogin, true, 'client A: the user signs in');
    const B = await codeFlow(configB, page, cb, { redirectUri: uriB, scope: 'openid profile', user: undefined });
    assert.equal(B.result.sawLogin, false, 'client B: no login form');
    assert.ok(!B.result.navigations.some((n) => new URL(n.url).pathname === '/login'),
      `client B never visits /login: ${JSON.stringify(B.result.navigations)}`);
    assert.equal(jose.decodeProtectedHeader(B.tokens.id_token).alg, 'ES256', 'client B gets ES256 ID tokens');
    await checkUserTokens(configB, B.tokens, { clientId: b.client_id, idTokenAlg: 'ES256', scope: 'openid profile' });
    assert.equal(B.claims.sub, A.claims.sub, 'same user');
    assert.equal(B.claims.sid, A.claims.sid, 'same OP session (sid)');
    assert.equal(B.claims.auth_time, A.claims.auth_time, 'same authentication event (auth_time)');
    assert.ok([].concat(B.claims.aud).includes(b.client_id) && ![].concat(B.claims.aud).includes(a.client_id), 'B\'s ID token is for B only');
  });
});

test('consent is asked once per scope set, and can be denied', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const redirectUri = cb.url('/cb');
    const c = await createClient(server, { name: 'Consenting RP', redirectUris: [redirectUri] });
    const config = await discover(issuer, c.client_id, c.client_secret, client.ClientSecretBasic(c.client_secret));
    const page = await (await newContext()).newPage();

    // First time: login, then consent.
    const checks = await newChecks();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid profile', state: checks.state, nonce: checks.nonce,
      code_challenge: checks.codeChallenge, code_challenge_method: 'S256',
    });
    const shown = await browserAuthorize(page, url, cb.base, { user: ALICE, decision: null });
    assert.equal(shown.sawLogin, true);
    assert.equal(shown.sawConsent, true, `a consent page is shown (at ${page.url()})`);
    assert.equal(new URL(page.url()).origin, issuer, 'the consent page is served by the provider');
    const allow = page.locator('button[name=decision][value=allow]');
    const deny = page.locator('button[name=decision][value=deny]');
    assert.equal(await allow.count(), 1, 'an Allow button');
    assert.equal(await deny.count(), 1, 'a Deny button');
    assert.match((await allow.textContent()).trim(), /allow/i);
    assert.match((await deny.textContent()).trim(), /deny/i);
    const onPage = await page.textContent('body');
    assert.ok(onPage.includes('Consenting RP'), 'the consent page names the client');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(cb.base)), allow.click()]);
    const back = new URL(page.url());
    assert.ok(back.searchParams.get('code'), `Allow returns a code: ${back}`);
    assert.equal(back.searchParams.get('iss'), issuer);
    const tokens = await client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: checks.pkceCodeVerifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true,
    });
    assert.ok(tokens.access_token);

    // Same scopes again: no consent page.
    const again = await codeFlow(config, page, cb, { redirectUri, scope: 'openid profile', user: undefined, decision: null });
    assert.equal(again.result.sawConsent, false, 'consent is remembered for the same scopes');
    assert.equal(again.result.sawLogin, false);

    // More scopes: asked again; Deny -> access_denied.
    const more = await newChecks();
    const url3 = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid profile email', state: more.state, nonce: more.nonce,
      code_challenge: more.codeChallenge, code_challenge_method: 'S256',
    });
    const denied = await browserAuthorize(page, url3, cb.base, { decision: 'deny' });
    assert.equal(denied.sawConsent, true, 'a new scope (email) asks for consent again');
    assert.equal(denied.url.searchParams.get('error'), 'access_denied', `Deny gives access_denied: ${denied.url}`);
    assert.equal(denied.url.searchParams.get('state'), more.state);
    assert.equal(denied.url.searchParams.get('iss'), issuer);
    assert.equal(denied.url.searchParams.get('code'), null);
  });
});

test('signing key rotation', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    const c = await createClient(server, { name: 'Rotating service', grantTypes: ['client_credentials'], scopes: ['api:read'] });
    const config = await discover(issuer, c.client_id, c.client_secret, client.ClientSecretBasic(c.client_secret));
    const t1 = (await client.clientCredentialsGrant(config, { scope: 'api:read' })).access_token;
    const kid1 = jose.decodeProtectedHeader(t1).kid;
    assert.ok(kid1, 'T1 names its key');

    const before = await server.cli(['keys', 'list']);
    const rotated = await server.cli(['keys', 'rotate']);
    t.diagnostic(`keys rotate printed ${JSON.stringify(rotated)}`);
    assert.equal(typeof rotated, 'object');
    const after = await server.cli(['keys', 'list']);
    assert.notDeepEqual(after, before, 'keys list changes after a rotation');

    let t2;
    let kid2 = kid1;
    const deadline = Date.now() + 5_000;
    while (kid2 === kid1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      t2 = (await client.clientCredentialsGrant(config, { scope: 'api:read' })).access_token;
      kid2 = jose.decodeProtectedHeader(t2).kid;
    }
    assert.notEqual(kid2, kid1, 'after rotation new tokens are signed with a new key');

    const fresh = jose.createRemoteJWKSet(new URL(`${issuer}/oauth2/jwks`));
    const v1 = await jose.jwtVerify(t1, fresh, { issuer, typ: 'at+jwt' });
    assert.equal(v1.protectedHeader.kid, kid1, 'T1 (old key) still verifies against the published JWKS');
    const v2 = await jose.jwtVerify(t2, fresh, { issuer, typ: 'at+jwt' });
    assert.equal(v2.protectedHeader.kid, kid2, 'T2 (new key) verifies');
    const jwks = await (await fetch(`${issuer}/oauth2/jwks`)).json();
    const kids = jwks.keys.map((k) => k.kid);
    assert.ok(kids.includes(kid1) && kids.includes(kid2), `the JWKS publishes both keys: ${kids}`);
  });
});

test('authorization by POST, response_mode=form_post, client_secret_post, userinfo by POST', async (t) => {
  await oauthScenario(t, async ({ server, newContext, cb, issuer }) => {
    const redirectUri = cb.url('/form-post/cb');
    const c = await createClient(server, {
      name: 'Form post RP', redirectUris: [redirectUri], skipConsent: true, tokenEndpointAuthMethod: 'client_secret_post',
    });
    const config = await discover(issuer, c.client_id, c.client_secret, client.ClientSecretPost(c.client_secret));
    const page = await (await newContext()).newPage();

    // The RP's page (another site) POSTs the authorization request to the
    // provider. SameSite=Lax keeps the session cookie off a cross-site POST, so
    // the provider asks for a login and must carry the request through it.
    const checks = await newChecks();
    const params = {
      response_type: 'code', client_id: c.client_id, redirect_uri: redirectUri, scope: 'openid email',
      state: checks.state, nonce: checks.nonce, code_challenge: checks.codeChallenge, code_challenge_method: 'S256',
      response_mode: 'form_post',
    };
    const esc = (v) => String(v).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    cb.servePage('/start', `<!doctype html><html><body><form id="f" method="post" action="${issuer}/oauth2/authorize">${
      Object.entries(params).map(([k, v]) => `<input type="hidden" name="${k}" value="${esc(v)}">`).join('')
    }<button type="submit">go</button></form></body></html>`);
    await page.goto(cb.url('/start'));
    const navs = [];
    page.on('response', (r) => {
      if (r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()) {
        navs.push({ url: r.url(), status: r.status(), method: r.request().method(), csp: r.headers()['content-security-policy'] });
      }
    });
    const hit = cb.waitFor((h) => h.url.pathname === '/form-post/cb', 20_000);
    await clickAndWait(page, page.locator('#f button'));
    assert.equal(pathOf(page), '/login', `the POSTed request leads to the login page (at ${page.url()})`);
    await page.fill('#username', ALICE.username);
    await page.fill('#password', ALICE.password);
    await page.click('button[type=submit]');
    const got = await hit.catch((e) => {
      throw new Error(`${e.message}; the browser is at ${page.url()}; navigations: ${JSON.stringify(navs)}`);
    });
    assert.equal(got.method, 'POST', 'form_post: the browser POSTs the response to the redirect_uri');
    assert.equal(got.url.search, '', `form_post: nothing in the query string (${got.url})`);
    const body = new URLSearchParams(got.body);
    assert.ok(body.get('code'), `a code in the POST body: ${got.body}`);
    assert.equal(body.get('state'), checks.state);
    assert.equal(body.get('iss'), issuer);
    const first = navs[0];
    assert.ok(first && first.method === 'POST' && first.url === `${issuer}/oauth2/authorize`,
      `the authorization request went out as a POST without query: ${JSON.stringify(navs)}`);
    const formPage = navs.filter((n) => n.url.startsWith(`${issuer}/oauth2/authorize`)).at(-1);
    assert.equal(formPage.status, 200, `form_post answers with a self-submitting page: ${JSON.stringify(navs)}`);

    // openid-client reads the form_post response from a Request.
    const request = new Request(redirectUri, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: got.body,
    });
    const tokens = await client.authorizationCodeGrant(config, request, {
      pkceCodeVerifier: checks.pkceCodeVerifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true,
    });
    const claims = tokens.claims();
    assert.ok(claims.sub);

    const r = await fetch(config.serverMetadata().userinfo_endpoint, {
      method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    assert.equal(r.status, 200, 'userinfo by POST');
    const info = await r.json();
    assert.equal(info.sub, claims.sub);
    assert.equal(info.email, ALICE.email);
  });
});
