// Back-channel logout (OIDC Back-Channel Logout 1.0) and the admin REST API.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import {
  ALICE, CookieJar, createClient, createUser, jarCode, jarFetch, jarSignIn, postForm, startCallbackServer, withServer,
} from './lib/oauth.mjs';

const CHEAP = { TESSERA_PASSWORD__MEMORY_KIB: '1024', TESSERA_PASSWORD__ITERATIONS: '1' };
const ADMIN_KEY = 'test-admin-key-0123456789-abcdefghijklmnop';

test('back-channel logout: signing out sends a signed logout token to the registered URI', async (t) => {
  const cb = await startCallbackServer();
  t.after(() => cb.close());
  await withServer(t, async (server) => {
    const issuer = server.url;
    await createUser(server);
    const rp = await createClient(server, {
      name: 'bcl', redirectUris: [cb.url('/cb')], skipConsent: true, backchannelLogoutUri: cb.url('/backchannel'),
    });
    const jar = new CookieJar();
    await jarSignIn(issuer, jar);
    const { code, verifier } = await jarCode(issuer, jar, { clientId: rp.client_id, redirectUri: cb.url('/cb'), scope: 'openid' });
    const tok = await postForm(`${issuer}/oauth2/token`, { grant_type: 'authorization_code', code, redirect_uri: cb.url('/cb'), code_verifier: verifier },
      { basic: [rp.client_id, rp.client_secret] });
    assert.equal(tok.status, 200, JSON.stringify(tok.json));
    const idClaims = jose.decodeJwt(tok.json.id_token);

    // Sign out at Tessera (account page's form).
    const account = await jarFetch(jar, `${issuer}/account`);
    const csrf = (await account.text()).match(/name="csrf_token" value="([^"]+)"/)[1];
    const out = await jarFetch(jar, `${issuer}/logout`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf_token: csrf }),
    });
    assert.equal(out.status, 303);

    const hit = await cb.waitFor((h) => h.url.pathname === '/backchannel', 10_000);
    assert.equal(hit.method, 'POST');
    assert.match(hit.headers['content-type'], /application\/x-www-form-urlencoded/);
    const logoutToken = new URLSearchParams(hit.body).get('logout_token');
    const JWKS = jose.createRemoteJWKSet(new URL(`${issuer}/oauth2/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(logoutToken, JWKS, { issuer, audience: rp.client_id, typ: 'logout+jwt' });
    assert.equal(protectedHeader.typ, 'logout+jwt');
    assert.ok(payload.events['http://schemas.openid.net/event/backchannel-logout'], 'the back-channel logout event');
    assert.equal(payload.sid, idClaims.sid, 'the logout token names the session of the ID token');
    assert.equal(payload.sub, idClaims.sub);
    assert.ok(payload.jti && payload.iat, 'jti and iat');
    assert.equal(payload.nonce, undefined, 'a logout token never carries a nonce');

    // The session's refresh token is dead (its grant was revoked with the session).
    const r = await postForm(`${issuer}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: tok.json.refresh_token },
      { basic: [rp.client_id, rp.client_secret] });
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'invalid_grant');
  }, { env: { ...CHEAP, TESSERA_OAUTH__ALLOW_PRIVATE_BACKCHANNEL: 'true' } });
});

test('admin API: authentication, users, clients, sessions, OpenAPI document', async (t) => {
  await withServer(t, async (server) => {
    const base = `${server.url}/admin/v1`;
    const call = (method, path, { token = ADMIN_KEY, body } = {}) => fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

    const doc = await (await fetch(`${base}/openapi.json`)).json();
    assert.equal(doc.openapi, '3.1.0');
    for (const p of ['/admin/v1/users', '/admin/v1/users/{id}', '/admin/v1/clients', '/admin/v1/keys/rotate', '/admin/v1/audit']) {
      assert.ok(doc.paths[p], `the OpenAPI document describes ${p}`);
    }

    let r = await call('GET', '/users', { token: null });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate'), /^Bearer/);
    r = await call('GET', '/users', { token: 'wrong-key' });
    assert.equal(r.status, 401);

    r = await call('POST', '/users', { body: { username: 'bob', email: 'bob@example.com', password: 'a long enough passphrase here' } });
    assert.equal(r.status, 201);
    const bob = await r.json();
    assert.equal(bob.username, 'bob');
    r = await call('POST', '/users', { body: { username: 'BOB', password: 'a long enough passphrase here' } });
    assert.equal(r.status, 409, 'usernames are unique case-insensitively');
    r = await call('POST', '/users', { body: { username: 'carol', bogus: 1 } });
    assert.equal(r.status, 400, 'unknown fields are refused');
    r = await call('PATCH', `/users/${bob.id}`, { body: { name: 'Bob B.', disabled: true } });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).disabled, true);
    r = await call('GET', `/users/${bob.id}`);
    assert.equal((await r.json()).name, 'Bob B.');

    r = await call('POST', '/clients', { body: { name: 'svc', grant_types: ['client_credentials'], scopes: ['api:read'] } });
    assert.equal(r.status, 201);
    const svc = await r.json();
    assert.ok(svc.client_id && svc.client_secret);
    const cc = await postForm(`${server.url}/oauth2/token`, { grant_type: 'client_credentials' }, { basic: [svc.client_id, svc.client_secret] });
    assert.equal(cc.status, 200, 'the client made through the admin API works');
    r = await call('DELETE', `/clients/${svc.client_id}`);
    assert.equal(r.status, 204);
    r = await call('GET', `/clients/${svc.client_id}`);
    assert.equal(r.status, 404);

    // An access token of an ordinary client is refused, even an administrator's; a token
    // minted for the admin API (an admin_api client, scope tessera:admin) of an administrator
    // is accepted, and a user without the admin role cannot get one.
    await createUser(server);
    const adminUser = await server.cli(['user', 'create', '--username', 'root', '--role', 'admin', '--password-stdin'], { stdin: 'another long passphrase for root\n' });
    const cb = await startCallbackServer();
    t.after(() => cb.close());
    const ordinary = await createClient(server, { name: 'ordinary', redirectUris: [cb.url('/cb')], skipConsent: true });
    const rp = await createClient(server, { name: 'console', redirectUris: [cb.url('/cb')], skipConsent: true, adminApi: true });
    const root = { username: 'root', password: 'another long passphrase for root' };
    const tokenFor = async (user, client = rp, scope = 'openid tessera:admin') => {
      const jar = new CookieJar();
      await jarSignIn(server.url, jar, user);
      const { code, verifier } = await jarCode(server.url, jar, { clientId: client.client_id, redirectUri: cb.url('/cb'), scope });
      const tok = await postForm(`${server.url}/oauth2/token`, { grant_type: 'authorization_code', code, redirect_uri: cb.url('/cb'), code_verifier: verifier },
        { basic: [client.client_id, client.client_secret] });
      return tok.json.access_token;
    };
    r = await call('GET', '/users', { token: await tokenFor(ALICE, rp, 'openid') });
    assert.equal(r.status, 403, 'a user without the admin role is forbidden');
    r = await call('GET', '/users', { token: await tokenFor(root, ordinary, 'openid') });
    assert.equal(r.status, 403, 'an administrator\'s token for an ordinary client is forbidden');
    r = await call('GET', '/users', { token: await tokenFor(root) });
    assert.equal(r.status, 200, 'an administrator\'s admin API token is accepted');
    assert.ok((await r.json()).users.some((u) => u.id === adminUser.id));

    r = await call('GET', `/audit?user_id=${bob.id}`);
    const events = (await r.json()).events;
    assert.ok(events.some((e) => e.kind === 'user_created') && events.some((e) => e.kind === 'user_disabled'), 'audit by user');
  }, { env: { ...CHEAP, TESSERA_ADMIN__API_KEY: ADMIN_KEY } });
});
