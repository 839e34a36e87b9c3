// Helpers for the OAuth 2.1 / OpenID Connect protocol tests.
//
// - CLI wrappers (users, clients);
// - a tiny loopback HTTP server playing the client's redirect_uri;
// - browser driving of an authorization request (login form, consent page);
// - a fetch-based user agent (cookie jar) that signs in and walks an
//   authorization request without a browser, for the negative tests;
// - small protocol utilities (at_hash, PKCE, raw token requests).

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { startServer, clickAndWait, RESULTS_DIR } from './tessera.mjs';

export const ALICE = {
  username: 'alice',
  email: 'alice@example.com',
  name: 'Alice Example',
  password: 'correct horse battery staple',
};

export const FORM = 'application/x-www-form-urlencoded';

// ---------------------------------------------------------------------------
// CLI wrappers

export async function createUser(server, u = ALICE) {
  const out = await server.cli(
    ['user', 'create', '--username', u.username, '--email', u.email, '--name', u.name, '--password-stdin'],
    { stdin: `${u.password}\n` },
  );
  assert.ok(out && out.id, `user create prints an id: ${JSON.stringify(out)}`);
  return out;
}

/**
 * `tessera client create`. Options map onto the CLI flags:
 * { name, redirectUris: [], postLogoutRedirectUris: [], public: bool,
 *   grantTypes: [], scopes: [], skipConsent: bool, requireMfa: bool, backchannelLogoutUri,
 *   tokenEndpointAuthMethod, idTokenAlg, jwks (object), adminApi: bool, grantLifetime }.
 * Resolves to { client_id, client_secret? }.
 */
export async function createClient(server, o = {}) {
  const args = ['client', 'create', '--name', o.name ?? `client-${randomBytes(3).toString('hex')}`];
  for (const u of o.redirectUris ?? []) args.push('--redirect-uri', u);
  for (const u of o.postLogoutRedirectUris ?? []) args.push('--post-logout-redirect-uri', u);
  if (o.public) args.push('--public');
  for (const g of o.grantTypes ?? []) args.push('--grant-type', g);
  for (const s of o.scopes ?? []) args.push('--scope', s);
  if (o.skipConsent) args.push('--skip-consent');
  if (o.requireMfa) args.push('--require-mfa');
  if (o.backchannelLogoutUri) args.push('--backchannel-logout-uri', o.backchannelLogoutUri);
  if (o.tokenEndpointAuthMethod) args.push('--token-endpoint-auth-method', o.tokenEndpointAuthMethod);
  if (o.idTokenAlg) args.push('--id-token-signed-response-alg', o.idTokenAlg);
  if (o.jwks) args.push('--jwks', typeof o.jwks === 'string' ? o.jwks : JSON.stringify(o.jwks));
  if (o.adminApi) args.push('--admin-api');
  if (o.grantLifetime) args.push('--grant-lifetime', o.grantLifetime);
  const out = await server.cli(args);
  assert.equal(typeof out?.client_id, 'string', `client create prints a client_id: ${JSON.stringify(out)}`);
  assert.ok(out.client_id.length > 0);
  if (o.public || o.tokenEndpointAuthMethod === 'none' || o.tokenEndpointAuthMethod === 'private_key_jwt') {
    assert.ok(!out.client_secret, `a ${o.public ? 'public' : o.tokenEndpointAuthMethod} client gets no client_secret: ${JSON.stringify(out)}`);
  } else {
    assert.equal(typeof out.client_secret, 'string', `a confidential client gets a client_secret: ${JSON.stringify(out)}`);
    assert.ok(out.client_secret.length >= 16, 'client_secret is long enough');
  }
  return out;
}

// ---------------------------------------------------------------------------
// Servers

/**
 * Runs `fn(server)` against a fresh server without a browser; prints the
 * server's output (and saves it under test-results/) if `fn` throws.
 */
export async function withServer(t, fn, opts = {}) {
  const server = await startServer(opts);
  try {
    await fn(server);
  } catch (e) {
    const slug = (t.name || 'test').replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 80);
    const dir = path.join(RESULTS_DIR, slug);
    await mkdir(dir, { recursive: true }).catch(() => {});
    await writeFile(path.join(dir, 'server.log'), server.output()).catch(() => {});
    console.error(`\n[${t.name}] failed; server output follows\n${server.output()}\n`);
    throw e;
  } finally {
    await server.stop();
  }
}

/**
 * A loopback HTTP server standing in for the client's redirection endpoint.
 * Every request is recorded (full URL, method, body); the answer is 200 "ok".
 * `url(path)` gives e.g. http://127.0.0.1:PORT/cb.
 */
export async function startCallbackServer() {
  const hits = [];
  const waiters = [];
  const pages = new Map();
  const srv = http.createServer((req, res) => {
    const page = pages.get(new URL(req.url, 'http://x').pathname);
    if (page && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page);
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const hit = { method: req.method, url: new URL(req.url, base), body, headers: req.headers };
      hits.push(hit);
      for (const w of [...waiters]) {
        if (w.pred(hit)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(hit);
        }
      }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('ok');
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${srv.address().port}`;
  return {
    base,
    hits,
    url: (p = '/cb') => `${base}${p}`,
    /** Serves `html` at GET `p` (e.g. a page that starts an authorization by POST). */
    servePage(p, html) { pages.set(p, html); },
    waitFor(pred = () => true, timeout = 15_000) {
      const found = hits.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error(`no request reached the callback server within ${timeout} ms`));
          }
        }, timeout).unref();
      });
    },
    close: () => new Promise((resolve) => { srv.closeAllConnections?.(); srv.close(() => resolve()); }),
  };
}

// ---------------------------------------------------------------------------
// openid-client

/** `client.discovery` against the (plain-http) issuer. */
export function discover(issuer, clientId, metadata, clientAuth, { nonRepudiation = true } = {}) {
  const execute = [client.allowInsecureRequests];
  if (nonRepudiation) execute.push(client.enableNonRepudiationChecks);
  return client.discovery(new URL(issuer), clientId, metadata, clientAuth, { execute });
}

/** Fresh PKCE, state and nonce. */
export async function newChecks() {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  return {
    pkceCodeVerifier,
    codeChallenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    state: client.randomState(),
    nonce: client.randomNonce(),
  };
}

/** Runs `fn`, expects it to reject with an OAuth error `code`; resolves to the error. */
export async function expectOAuthError(fn, code, what, status) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${what}: expected an OAuth error "${code}", but the call succeeded`);
  assert.equal(err.error, code, `${what}: error is "${code}" (got ${err.name}: ${err.message}; error=${err.error}; status=${err.status}; body=${JSON.stringify(err.cause)})`);
  if (status !== undefined) assert.equal(err.status, status, `${what}: HTTP status ${status}`);
  return err;
}

// ---------------------------------------------------------------------------
// Protocol utilities

/** OIDC at_hash / c_hash for `alg`. */
export function halfHash(value, alg) {
  let h;
  if (/^(RS|PS|ES)256$/.test(alg)) h = 'sha256';
  else if (/^(RS|PS|ES)384$/.test(alg)) h = 'sha384';
  else if (/^(RS|PS|ES)512$/.test(alg) || alg === 'EdDSA' || alg === 'Ed25519') h = 'sha512';
  else throw new Error(`no hash for alg ${alg}`);
  const d = createHash(h).update(value, 'ascii').digest();
  return d.subarray(0, d.length / 2).toString('base64url');
}

/** Decodes a JWT's payload without verifying it. */
export function jwtPayload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

export function b64urlJson(obj) {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

/** A JWT with `alg: none` (empty signature). */
export function unsignedJwt(header, payload) {
  return `${b64urlJson({ ...header, alg: 'none' })}.${b64urlJson(payload)}.`;
}

/** Raw POST to an endpoint with a form body; `basic: [id, secret]` adds HTTP Basic. */
export async function postForm(url, params, { basic, headers = {} } = {}) {
  const h = { 'content-type': FORM, accept: 'application/json', ...headers };
  if (basic) {
    const [id, secret] = basic;
    h.authorization = `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  }
  const res = await fetch(url, { method: 'POST', headers: h, body: new URLSearchParams(params), redirect: 'manual' });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

/** Describes a raw response for assertion messages. */
export function describe(r) {
  const hs = [];
  r.headers.forEach((v, k) => hs.push(`${k}: ${v}`));
  return `HTTP ${r.status}\n${hs.join('\n')}\n\n${(r.text ?? '').slice(0, 800)}`;
}

// ---------------------------------------------------------------------------
// Browser driving

/**
 * Opens `authUrl` in `page` and walks through whatever the provider shows
 * (login form for `user`, consent page -> `decision`) until the browser is at
 * `callbackBase`. Records every top-level navigation response.
 * Resolves to { url: URL, sawLogin, sawConsent, navigations: [{url, status, location}] }.
 */
export async function browserAuthorize(page, authUrl, callbackBase, { user, decision = 'allow', maxSteps = 6 } = {}) {
  const navigations = [];
  const onResponse = (r) => {
    const req = r.request();
    if (!req.isNavigationRequest() || req.frame() !== page.mainFrame()) return;
    navigations.push({ url: r.url(), status: r.status(), location: r.headers().location, method: req.method() });
  };
  page.on('response', onResponse);
  let sawLogin = false;
  let sawConsent = false;
  try {
    await page.goto(String(authUrl));
    for (let step = 0; ; step++) {
      const here = page.url();
      if (here.startsWith(callbackBase)) break;
      if (step >= maxSteps) throw new Error(`authorization did not reach ${callbackBase}; stuck at ${here}`);
      const u = new URL(here);
      if (u.pathname === '/login') {
        if (!user) throw new Error(`the provider asked for a login (${here}) but no user was given`);
        sawLogin = true;
        await page.fill('#username', user.username);
        await page.fill('#password', user.password);
        await clickAndWait(page, page.locator('button[type=submit]'));
        continue;
      }
      if (await page.locator('button[name=decision]').count() > 0) {
        sawConsent = true;
        if (!decision) break;
        await clickAndWait(page, page.locator(`button[name=decision][value=${decision}]`));
        continue;
      }
      // A page that moves on by itself (e.g. a form_post response) gets a moment.
      const moved = await page.waitForURL((x) => x.href !== here, { timeout: 5_000 }).then(() => true, () => false);
      if (moved) {
        await page.waitForLoadState('load');
        continue;
      }
      const body = (await page.textContent('body').catch(() => '')) ?? '';
      throw new Error(`unexpected page during authorization: ${here}\n${body.trim().slice(0, 600)}`);
    }
  } finally {
    page.off('response', onResponse);
  }
  return { url: new URL(page.url()), sawLogin, sawConsent, navigations };
}

// ---------------------------------------------------------------------------
// A fetch-based user agent

/** A cookie jar for one host (the issuer). */
export class CookieJar {
  constructor() { this.cookies = new Map(); }
  store(res) {
    const list = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
    for (const sc of list) {
      const [pair, ...attrs] = sc.split(';');
      const i = pair.indexOf('=');
      if (i < 0) continue;
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const maxAge = attrs.map((a) => a.trim()).find((a) => /^max-age=/i.test(a));
      const expires = attrs.map((a) => a.trim()).find((a) => /^expires=/i.test(a));
      const expired = (maxAge && Number(maxAge.split('=')[1]) <= 0)
        || (expires && Date.parse(expires.slice(8)) < Date.now());
      if (value === '' || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  get(name) { return this.cookies.get(name); }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

/** fetch with the jar's cookies, never following redirects; stores Set-Cookie. */
export async function jarFetch(jar, url, init = {}) {
  const headers = new Headers(init.headers ?? {});
  if (jar.cookies.size) headers.set('cookie', jar.header());
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(res);
  return res;
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#x2F': '/', '#x2f': '/', '#47': '/' };
function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (ENTITIES[e] !== undefined) return ENTITIES[e];
    if (/^#x/i.test(e)) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (/^#/.test(e)) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return m;
  });
}

function attrs(tag) {
  const out = {};
  const re = /([^\s=<>/"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g;
  const inner = tag.replace(/^<\s*\w+/, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(inner))) {
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The forms of an HTML page: [{ action, method, fields: {name: value}, buttons: [{name, value, text}] }]. */
export function parseForms(html) {
  const forms = [];
  const re = /<form\b[^>]*>([\s\S]*?)<\/form>/gi;
  let m;
  while ((m = re.exec(html))) {
    const open = /^<form\b[^>]*>/i.exec(m[0])[0];
    const a = attrs(open);
    const fields = {};
    for (const t of m[1].match(/<input\b[^>]*>/gi) ?? []) {
      const ia = attrs(t);
      if (ia.name && (ia.type ?? 'text').toLowerCase() !== 'submit') fields[ia.name] = ia.value ?? '';
    }
    const buttons = [];
    const bre = /<button\b[^>]*>([\s\S]*?)<\/button>/gi;
    let b;
    while ((b = bre.exec(m[1]))) {
      const ba = attrs(/^<button\b[^>]*>/i.exec(b[0])[0]);
      buttons.push({ name: ba.name, value: ba.value, text: b[1].replace(/<[^>]+>/g, '').trim() });
    }
    forms.push({ action: a.action ?? '', method: (a.method ?? 'get').toLowerCase(), fields, buttons });
  }
  return forms;
}

/** The value of the first `<input name=NAME>` of a page. */
export function inputValue(html, name) {
  for (const t of html.match(/<input\b[^>]*>/gi) ?? []) {
    const a = attrs(t);
    if (a.name === name) return a.value ?? '';
  }
  return undefined;
}

/** Signs in with the login form; resolves to the 303 response of POST /login. */
export async function jarSignIn(issuer, jar, user = ALICE, returnTo = '/account') {
  const page = await jarFetch(jar, `${issuer}/login?return_to=${encodeURIComponent(returnTo)}`);
  const html = await page.text();
  assert.equal(page.status, 200, `GET /login is 200 (got ${page.status})`);
  const csrf = inputValue(html, 'csrf_token');
  assert.ok(csrf, 'the login page has a csrf_token');
  const res = await jarFetch(jar, `${issuer}/login`, {
    method: 'POST',
    headers: { 'content-type': FORM, origin: issuer },
    body: new URLSearchParams({ csrf_token: csrf, return_to: returnTo, username: user.username, password: user.password }),
  });
  if (res.status !== 303) {
    throw new Error(`POST /login did not answer 303 (got ${res.status}): ${(await res.text()).slice(0, 400)}`);
  }
  assert.ok(jar.get('tessera_session'), 'signed in: the jar holds tessera_session');
  return res;
}

/**
 * Walks from `url` through the provider's redirects (carrying the jar's
 * cookies) until a response that is not a redirect within the issuer, or a
 * redirect leaving it. A consent page is answered with `decision` if given.
 * Resolves to { status, location (URL or undefined), html, chain: [{url, status, location}] }.
 */
export async function jarWalk(issuer, jar, url, { decision, maxSteps = 8 } = {}) {
  const chain = [];
  let next = { url: String(url), init: {} };
  for (let step = 0; step < maxSteps; step++) {
    const res = await jarFetch(jar, next.url, next.init);
    const location = res.headers.get('location');
    const text = await res.text();
    chain.push({ url: next.url, status: res.status, location, headers: res.headers, text });
    if (res.status >= 300 && res.status < 400 && location) {
      const target = new URL(location, next.url);
      if (target.origin !== new URL(issuer).origin) {
        return { status: res.status, location: target, headers: res.headers, text, chain };
      }
      next = { url: target.href, init: {} };
      continue;
    }
    if (res.status === 200 && decision) {
      const form = parseForms(text).find((f) => f.buttons.some((b) => b.name === 'decision'));
      if (form) {
        const body = new URLSearchParams({ ...form.fields, decision });
        const action = new URL(form.action || next.url, next.url).href;
        next = { url: action, init: { method: 'POST', headers: { 'content-type': FORM, origin: issuer }, body } };
        continue;
      }
    }
    return { status: res.status, location: location ? new URL(location, next.url) : undefined, headers: res.headers, text, chain };
  }
  throw new Error(`too many redirects from ${url}: ${chain.map((c) => `${c.status} ${c.url}`).join(' -> ')}`);
}

/** Builds an authorization URL by hand (no openid-client). */
export function authorizeUrl(issuer, params) {
  const u = new URL('/oauth2/authorize', issuer);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u;
}

/** PKCE pair. */
export function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/**
 * With a signed-in jar, obtains an authorization code for a skip-consent
 * client. Resolves to { code, verifier, state, nonce, redirectUri }.
 */
export async function jarCode(issuer, jar, { clientId, redirectUri, scope = 'openid profile email offline_access', extra = {} }) {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(12).toString('base64url');
  const nonce = randomBytes(12).toString('base64url');
  const url = authorizeUrl(issuer, {
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state, nonce,
    code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  });
  const r = await jarWalk(issuer, jar, url, { decision: 'allow' });
  assert.ok(r.location, `the authorization request ends in a redirect to the client (got ${r.status} ${r.chain.map((c) => `${c.status} ${c.url}`).join(' -> ')}\n${(r.text ?? '').slice(0, 400)})`);
  assert.equal(r.location.href.split('?')[0], redirectUri, `redirected to the redirect_uri: ${r.location}`);
  const code = r.location.searchParams.get('code');
  assert.ok(code, `a code in ${r.location} (error=${r.location.searchParams.get('error')}: ${r.location.searchParams.get('error_description')})`);
  assert.equal(r.location.searchParams.get('state'), state, 'state is echoed');
  return { code, verifier, state, nonce, redirectUri, location: r.location };
}
