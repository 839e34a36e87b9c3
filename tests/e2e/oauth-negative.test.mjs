// OAuth 2.1 / OpenID Connect: what the provider must refuse. Raw fetch with
// redirect: 'manual'; a cookie jar stands in for the browser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';
import {
  ALICE, createUser, createClient, withServer, discover, postForm, describe, CookieJar, jarFetch,
  jarSignIn, jarCode, authorizeUrl, pkcePair, unsignedJwt, jwtPayload, b64urlJson,
} from './lib/oauth.mjs';

// Never contacted: the tests stop at the redirect.
const REDIRECT = 'https://rp.example.com:8443/cb';
const POST_LOGOUT = 'https://rp.example.com:8443/logged-out';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

function validParams(clientId, extra = {}) {
  const { challenge } = pkcePair();
  return {
    response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope: 'openid profile',
    state: randomBytes(8).toString('hex'), nonce: randomBytes(8).toString('hex'),
    code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  };
}

async function rawGet(jar, url) {
  const res = await jarFetch(jar, url);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

function assertNoStore(r, what) {
  assert.match(r.headers.get('cache-control') ?? '', /no-store/i, `${what}: Cache-Control: no-store\n${describe(r)}`);
}

function assertOAuthJsonError(r, status, error, what) {
  assert.equal(r.status, status, `${what}: HTTP ${status}\n${describe(r)}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/i, `${what}: JSON error body`);
  assert.equal(r.json?.error, error, `${what}: error=${error}\n${describe(r)}`);
  assertNoStore(r, what);
}

// ---------------------------------------------------------------------------

test('authorization endpoint: unregistered and near-miss redirect URIs get an error page, never a redirect', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    await createUser(server, ALICE);
    const c = await createClient(server, { name: 'Strict RP', redirectUris: [REDIRECT], skipConsent: true });

    // Control: the registered URI is accepted (anonymous -> login; signed in -> code).
    const anonControl = await rawGet(new CookieJar(), authorizeUrl(issuer, validParams(c.client_id)));
    assert.equal(anonControl.status, 303, `control: a valid request without a session goes to the login page\n${describe(anonControl)}`);
    assert.match(anonControl.headers.get('location') ?? '', /^(https?:\/\/[^/]+)?\/login\?return_to=/, 'control: to /login?return_to=');
    const jar = new CookieJar();
    await jarSignIn(issuer, jar);
    const control = await jarCode(issuer, jar, { clientId: c.client_id, redirectUri: REDIRECT, scope: 'openid profile' });
    assert.ok(control.code, 'control: the registered redirect_uri gets a code');

    const bad = {
      unregistered: 'https://evil.example.net/cb',
      'trailing slash': 'https://rp.example.com:8443/cb/',
      'path case': 'https://rp.example.com:8443/CB',
      'extra query parameter': 'https://rp.example.com:8443/cb?x=1',
      'other port': 'https://rp.example.com:9443/cb',
      'default port': 'https://rp.example.com/cb',
      'http instead of https': 'http://rp.example.com:8443/cb',
      'other host': 'https://rp.example.com.evil.net:8443/cb',
      'userinfo in authority': 'https://rp.example.com:8443@evil.example.net/cb',
      fragment: 'https://rp.example.com:8443/cb#x',
    };
    for (const [label, uri] of Object.entries(bad)) {
      for (const [who, j] of [['anonymous', new CookieJar()], ['signed in', jar]]) {
        const r = await rawGet(j, authorizeUrl(issuer, validParams(c.client_id, { redirect_uri: uri })));
        const what = `${label} (${uri}), ${who}`;
        assert.equal(r.status, 400, `${what}: 400\n${describe(r)}`);
        assert.equal(r.headers.get('location'), null, `${what}: no Location header`);
        assert.match(r.headers.get('content-type') ?? '', /^text\/html/i, `${what}: an HTML error page`);
        assert.ok(!r.text.includes('code='), `${what}: the page carries no code`);
      }
    }

    // Unknown or missing client_id: also an error page.
    for (const [label, params] of [
      ['unknown client_id', validParams('no-such-client')],
      ['missing client_id', validParams(undefined)],
      ['missing redirect_uri', validParams(c.client_id, { redirect_uri: undefined })],
    ]) {
      const r = await rawGet(jar, authorizeUrl(issuer, params));
      if (label === 'missing redirect_uri' && r.status >= 300 && r.status < 400) {
        // OAuth 2.1 lets a client with a single registered URI omit it; then
        // it must go to that URI and nowhere else.
        assert.ok((r.headers.get('location') ?? '').startsWith(`${REDIRECT}?`), `${label}: only to the registered URI\n${describe(r)}`);
        continue;
      }
      assert.equal(r.status, 400, `${label}: 400\n${describe(r)}`);
      assert.equal(r.headers.get('location'), null, `${label}: no Location header`);
    }
  });
});

test('authorization endpoint: bad requests with a valid client and redirect URI are redirected back with an error', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    await createUser(server, ALICE);
    const c = await createClient(server, { name: 'Sloppy RP', redirectUris: [REDIRECT], skipConsent: true });
    const signedIn = new CookieJar();
    await jarSignIn(issuer, signedIn);

    const cases = [
      ['missing code_challenge', { code_challenge: undefined, code_challenge_method: undefined }, 'invalid_request'],
      ['code_challenge_method=plain', { code_challenge_method: 'plain', code_challenge: 'a'.repeat(43) }, 'invalid_request'],
      ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
      ['response_type=id_token', { response_type: 'id_token' }, 'unsupported_response_type'],
    ];
    for (const [who, jar] of [['signed in', signedIn], ['anonymous', new CookieJar()]]) {
      await t.test(who, async () => {
        for (const [label, extra, error] of cases) {
          const p = validParams(c.client_id, extra);
          const r = await rawGet(jar, authorizeUrl(issuer, p));
          const what = `${label} (${who})`;
          assert.ok([302, 303].includes(r.status), `${what}: a redirect\n${describe(r)}`);
          const loc = new URL(r.headers.get('location'));
          assert.equal(`${loc.origin}${loc.pathname}`, REDIRECT, `${what}: back to the registered redirect_uri, not ${loc}`);
          assert.equal(loc.searchParams.get('error'), error, `${what}: error=${error} (${loc})`);
          assert.equal(loc.searchParams.get('state'), p.state, `${what}: state echoed`);
          assert.equal(loc.searchParams.get('iss'), issuer, `${what}: iss`);
          assert.equal(loc.searchParams.get('code'), null, `${what}: no code`);
          assert.equal(loc.hash, '', `${what}: nothing in a fragment`);
        }
      });
    }
  });
});

test('token endpoint: code redemption errors', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    const token = `${issuer}/oauth2/token`;
    await createUser(server, ALICE);
    const a = await createClient(server, { name: 'RP A', redirectUris: [REDIRECT], skipConsent: true });
    const b = await createClient(server, { name: 'RP B', redirectUris: [REDIRECT], skipConsent: true });
    const jar = new CookieJar();
    await jarSignIn(issuer, jar);
    const getCode = () => jarCode(issuer, jar, { clientId: a.client_id, redirectUri: REDIRECT });
    const redeem = (code, verifier, creds = [a.client_id, a.client_secret], extra = {}) => postForm(token, {
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...extra,
    }, { basic: creds });

    await t.test('wrong code_verifier', async () => {
      const g = await getCode();
      const r = await redeem(g.code, pkcePair().verifier);
      assertOAuthJsonError(r, 400, 'invalid_grant', 'wrong code_verifier');
    });

    await t.test('missing code_verifier', async () => {
      const g = await getCode();
      const r = await postForm(token, { grant_type: 'authorization_code', code: g.code, redirect_uri: REDIRECT },
        { basic: [a.client_id, a.client_secret] });
      assert.ok(r.status === 400 && ['invalid_grant', 'invalid_request'].includes(r.json?.error),
        `missing code_verifier: 400 invalid_grant/invalid_request\n${describe(r)}`);
    });

    await t.test('redirect_uri differs from the authorization request', async () => {
      const g = await getCode();
      const r = await redeem(g.code, g.verifier, undefined, { redirect_uri: 'https://rp.example.com:8443/other' });
      assert.equal(r.status, 400, describe(r));
      assert.ok(['invalid_grant', 'invalid_request'].includes(r.json?.error), describe(r));
    });

    await t.test('code reuse revokes what the code gave', async () => {
      const g = await getCode();
      const first = await redeem(g.code, g.verifier);
      assert.equal(first.status, 200, `first redemption works\n${describe(first)}`);
      assertNoStore(first, 'token response');
      assert.ok(first.json.access_token && first.json.refresh_token && first.json.id_token, `tokens: ${first.text}`);
      const pre = await postForm(`${issuer}/oauth2/introspect`, { token: first.json.access_token }, { basic: [a.client_id, a.client_secret] });
      assert.equal(pre.json?.active, true, `before the replay the access token is active\n${describe(pre)}`);

      const second = await redeem(g.code, g.verifier);
      assertOAuthJsonError(second, 400, 'invalid_grant', 'second redemption of a code');

      const intro = await postForm(`${issuer}/oauth2/introspect`, { token: first.json.access_token }, { basic: [a.client_id, a.client_secret] });
      assert.equal(intro.status, 200, describe(intro));
      assert.equal(intro.json?.active, false, `after the replay the access token is inactive\n${describe(intro)}`);
      const refresh = await postForm(token, { grant_type: 'refresh_token', refresh_token: first.json.refresh_token },
        { basic: [a.client_id, a.client_secret] });
      assertOAuthJsonError(refresh, 400, 'invalid_grant', 'refresh token from a replayed code');
    });

    await t.test('code redeemed by another client', async () => {
      const g = await getCode();
      const r = await redeem(g.code, g.verifier, [b.client_id, b.client_secret]);
      assertOAuthJsonError(r, 400, 'invalid_grant', 'code of A redeemed by B');
    });

    await t.test('unsupported grant types', async () => {
      const r = await postForm(token, { grant_type: 'password', username: ALICE.username, password: ALICE.password },
        { basic: [a.client_id, a.client_secret] });
      assertOAuthJsonError(r, 400, 'unsupported_grant_type', 'grant_type=password');
      const r2 = await postForm(token, { grant_type: 'client_credentials' }, { basic: [a.client_id, a.client_secret] });
      assertOAuthJsonError(r2, 400, 'unauthorized_client', 'client_credentials for a client not registered for it');
    });

    await t.test('client authentication failures', async () => {
      const g = await getCode();
      const none = await postForm(token, {
        grant_type: 'authorization_code', code: g.code, redirect_uri: REDIRECT, code_verifier: g.verifier, client_id: a.client_id,
      });
      assertOAuthJsonError(none, 401, 'invalid_client', 'confidential client without its secret');
      const wrongPost = await postForm(token, {
        grant_type: 'authorization_code', code: g.code, redirect_uri: REDIRECT, code_verifier: g.verifier,
        client_id: a.client_id, client_secret: 'wrong-secret-wrong-secret',
      });
      assertOAuthJsonError(wrongPost, 401, 'invalid_client', 'client_secret_post with a wrong secret');
      const wrongBasic = await redeem(g.code, g.verifier, [a.client_id, b.client_secret]);
      assertOAuthJsonError(wrongBasic, 401, 'invalid_client', "client_secret_basic with another client's secret");
      assert.match(wrongBasic.headers.get('www-authenticate') ?? '', /^Basic\b/i, 'WWW-Authenticate: Basic');
      // None of these consumed the code.
      const ok = await redeem(g.code, g.verifier);
      assert.equal(ok.status, 200, `failed client authentication does not burn the code\n${describe(ok)}`);
    });
  });
});

test('logout: a forged id_token_hint does not end the session silently', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    await createUser(server, ALICE);
    const c = await createClient(server, {
      name: 'Logout RP', redirectUris: [REDIRECT], postLogoutRedirectUris: [POST_LOGOUT], skipConsent: true, idTokenAlg: 'RS256',
    });
    const jar = new CookieJar();
    await jarSignIn(issuer, jar);
    const g = await jarCode(issuer, jar, { clientId: c.client_id, redirectUri: REDIRECT, scope: 'openid' });
    const tok = await postForm(`${issuer}/oauth2/token`, {
      grant_type: 'authorization_code', code: g.code, redirect_uri: REDIRECT, code_verifier: g.verifier,
    }, { basic: [c.client_id, c.client_secret] });
    assert.equal(tok.status, 200, describe(tok));
    const idToken = tok.json.id_token;
    const header = jose.decodeProtectedHeader(idToken);
    assert.equal(header.alg, 'RS256');
    const claims = jwtPayload(idToken);

    const jwks = await (await fetch(`${issuer}/oauth2/jwks`)).json();
    const rsa = jwks.keys.find((k) => k.kid === header.kid);
    assert.ok(rsa, 'the ID token key is published');
    const rsaPem = await jose.exportSPKI(await jose.importJWK(rsa, 'RS256'));
    const rsaDer = createPublicKey({ key: rsa, format: 'jwk' }).export({ type: 'spki', format: 'der' });
    const ed = jwks.keys.find((k) => k.kty === 'OKP');
    const hs = (secret, kid = header.kid) => new jose.SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid }).sign(secret);
    const forged = {
      'alg none': unsignedJwt({ typ: 'JWT', kid: header.kid }, claims),
      'HS256 keyed with the RSA public key PEM': await hs(new TextEncoder().encode(rsaPem)),
      'HS256 keyed with the RSA public key DER': await hs(new Uint8Array(rsaDer)),
      'HS256 keyed with the RSA JWK JSON': await hs(new TextEncoder().encode(JSON.stringify(rsa))),
      'HS256 keyed with the Ed25519 public key bytes': await hs(Buffer.from(ed.x, 'base64url'), ed.kid),
      'RS256 with a tampered payload': `${idToken.split('.')[0]}.${b64urlJson({ ...claims, sub: 'someone-else' })}.${idToken.split('.')[2]}`,
    };

    const logoutUrl = (hint, state) => {
      const u = new URL(`${issuer}/oauth2/logout`);
      u.searchParams.set('id_token_hint', hint);
      u.searchParams.set('post_logout_redirect_uri', POST_LOGOUT);
      u.searchParams.set('state', state);
      return u;
    };
    for (const [label, hint] of Object.entries(forged)) {
      const state = randomBytes(8).toString('hex');
      const r = await rawGet(jar, logoutUrl(hint, state));
      assert.ok([200, 400].includes(r.status), `${label}: a page (200 or 400), not a redirect\n${describe(r)}`);
      assert.equal(r.headers.get('location'), null, `${label}: no Location header`);
      const acct = await rawGet(jar, `${issuer}/account`);
      assert.equal(acct.status, 200, `${label}: the session is still alive after a GET with a forged hint\n${describe(acct)}`);
    }

    // Control: the genuine hint redirects at once and ends the session.
    const state = randomBytes(8).toString('hex');
    const r = await rawGet(jar, logoutUrl(idToken, state));
    assert.equal(r.status, 303, `a valid id_token_hint: 303\n${describe(r)}`);
    const loc = new URL(r.headers.get('location'));
    assert.equal(`${loc.origin}${loc.pathname}`, POST_LOGOUT);
    assert.equal(loc.searchParams.get('state'), state);
    const acct = await rawGet(jar, `${issuer}/account`);
    assert.ok(acct.status === 303 && /\/login/.test(acct.headers.get('location') ?? ''), `signed out: /account sends to /login\n${describe(acct)}`);

    // A registered client with an unregistered post_logout_redirect_uri is never redirected to it.
    const jar2 = new CookieJar();
    await jarSignIn(issuer, jar2);
    const g2 = await jarCode(issuer, jar2, { clientId: c.client_id, redirectUri: REDIRECT, scope: 'openid' });
    const tok2 = await postForm(`${issuer}/oauth2/token`, {
      grant_type: 'authorization_code', code: g2.code, redirect_uri: REDIRECT, code_verifier: g2.verifier,
    }, { basic: [c.client_id, c.client_secret] });
    const u = new URL(`${issuer}/oauth2/logout`);
    u.searchParams.set('id_token_hint', tok2.json.id_token);
    u.searchParams.set('post_logout_redirect_uri', 'https://evil.example.net/logged-out');
    u.searchParams.set('state', 'x');
    const evil = await rawGet(jar2, u);
    assert.ok(!(evil.headers.get('location') ?? '').startsWith('https://evil.example.net'),
      `never to an unregistered post_logout_redirect_uri\n${describe(evil)}`);
  });
});

test('token endpoint: forged client assertions are rejected', async (t) => {
  await withServer(t, async (server) => {
    const issuer = server.url;
    const token = `${issuer}/oauth2/token`;
    const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
    const pub = { ...(await jose.exportJWK(publicKey)), kid: 'rp-key-1', alg: 'ES256', use: 'sig' };
    const c = await createClient(server, {
      name: 'JWT-auth service', grantTypes: ['client_credentials'], scopes: ['api:read'],
      tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [pub] },
    });

    // Control: openid-client's private_key_jwt works.
    const config = await discover(issuer, c.client_id, {}, client.PrivateKeyJwt({ key: privateKey, kid: pub.kid }));
    const ok = await client.clientCredentialsGrant(config, { scope: 'api:read' });
    assert.ok(ok.access_token, 'a properly signed client assertion is accepted');

    const now = Math.floor(Date.now() / 1000);
    const claims = () => ({
      iss: c.client_id, sub: c.client_id, aud: issuer, jti: randomBytes(12).toString('hex'), iat: now, exp: now + 60,
    });
    const sign = (key, alg, payload = claims(), kid = pub.kid) => new jose.SignJWT(payload)
      .setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key);
    const other = await jose.generateKeyPair('ES256');
    const pubPem = await jose.exportSPKI(publicKey);

    // A second valid assertion (with aud = token endpoint) is accepted too.
    const viaEndpoint = await postForm(token, {
      grant_type: 'client_credentials', scope: 'api:read', client_id: c.client_id,
      client_assertion_type: ASSERTION_TYPE, client_assertion: await sign(privateKey, 'ES256', { ...claims(), aud: token }),
    });
    t.diagnostic(`assertion with aud = token endpoint URL: HTTP ${viaEndpoint.status} ${viaEndpoint.text.slice(0, 120)}`);

    const forged = {
      'alg none': unsignedJwt({ kid: pub.kid, typ: 'JWT' }, claims()),
      'HS256 keyed with the registered JWK JSON': await sign(new TextEncoder().encode(JSON.stringify(pub)), 'HS256'),
      'HS256 keyed with the registered public key PEM': await sign(new TextEncoder().encode(pubPem), 'HS256'),
      'ES256 signed by an unregistered key with the same kid': await sign(other.privateKey, 'ES256'),
      expired: await sign(privateKey, 'ES256', { ...claims(), iat: now - 600, exp: now - 300 }),
      'wrong audience': await sign(privateKey, 'ES256', { ...claims(), aud: 'https://other.example.com' }),
      'iss/sub of another client': await sign(privateKey, 'ES256', { ...claims(), iss: 'someone-else', sub: 'someone-else' }),
    };
    for (const [label, assertion] of Object.entries(forged)) {
      const r = await postForm(token, {
        grant_type: 'client_credentials', scope: 'api:read', client_id: c.client_id,
        client_assertion_type: ASSERTION_TYPE, client_assertion: assertion,
      });
      assertOAuthJsonError(r, 401, 'invalid_client', `client_assertion: ${label}`);
    }
    // The client may not fall back to a weaker method.
    const noAuth = await postForm(token, { grant_type: 'client_credentials', scope: 'api:read', client_id: c.client_id });
    assertOAuthJsonError(noAuth, 401, 'invalid_client', 'private_key_jwt client without an assertion');
  });
});
