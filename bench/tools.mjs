// Helpers for bench/run.sh (Node 20+; uses tests/e2e's node_modules and helpers).
//
//   node bench/tools.mjs check TOKEN_URL JWKS_URL CLIENT_ID CLIENT_SECRET
//       one client_credentials token (client_secret_basic, scope api:read): verified against
//       the JWKS (EdDSA, typ at+jwt, 300 s lifetime), and a wrong secret must get 401.
//   node bench/tools.mjs refresh ISSUER USERNAME PASSWORD CLIENT_ID CLIENT_SECRET REDIRECT_URI N
//       signs in through the login form, runs N authorization code flows (PKCE, skip-consent
//       client) and prints the N refresh tokens, one a line.
//   node bench/tools.mjs login-form ISSUER
//       prints {"cookie": "<csrf cookie>", "csrf": "<token>"} from GET /login.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CookieJar, jarFetch, jarSignIn, jarCode, inputValue, postForm } from '../tests/e2e/lib/oauth.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const e2e = path.resolve(here, '..', 'tests', 'e2e');
const jose = await import(pathToFileURL(createRequire(path.join(e2e, 'package.json')).resolve('jose')).href);

function fail(msg) {
  console.error(`bench check failed: ${msg}`);
  process.exit(1);
}

async function check([tokenUrl, jwksUrl, id, secret]) {
  const ok = await postForm(tokenUrl, { grant_type: 'client_credentials', scope: 'api:read' }, { basic: [id, secret] });
  if (ok.status !== 200 || !ok.json?.access_token) fail(`token request: HTTP ${ok.status} ${ok.text.slice(0, 300)}`);
  const jwks = await (await fetch(jwksUrl)).json();
  const { payload, protectedHeader } = await jose.jwtVerify(ok.json.access_token, jose.createLocalJWKSet(jwks), {
    algorithms: ['EdDSA'],
    typ: 'at+jwt',
  });
  if (payload.exp - payload.iat !== 300) fail(`token lifetime is ${payload.exp - payload.iat} s, not 300`);
  if (ok.json.expires_in !== 300) fail(`expires_in is ${ok.json.expires_in}, not 300`);
  if (payload.scope !== 'api:read') fail(`scope is ${payload.scope}`);
  const bad = await postForm(tokenUrl, { grant_type: 'client_credentials', scope: 'api:read' }, { basic: [id, `${secret}x`] });
  if (bad.status !== 401) fail(`a wrong client secret got HTTP ${bad.status}, not 401`);
  console.log(JSON.stringify({
    verified: true, alg: protectedHeader.alg, typ: protectedHeader.typ, kid: protectedHeader.kid,
    lifetime_s: payload.exp - payload.iat, wrong_secret_status: bad.status, token_bytes: ok.json.access_token.length,
  }));
}

async function refresh([issuer, username, password, clientId, secret, redirectUri, n]) {
  const jar = new CookieJar();
  await jarSignIn(issuer, jar, { username, password });
  const out = [];
  for (let i = 0; i < Number(n); i++) {
    const { code, verifier } = await jarCode(issuer, jar, { clientId, redirectUri, scope: 'openid offline_access' });
    const r = await postForm(`${issuer}/oauth2/token`, {
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
    }, { basic: [clientId, secret] });
    if (r.status !== 200 || !r.json?.refresh_token) fail(`code exchange: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    out.push(r.json.refresh_token);
  }
  // One rotation by hand: the new token works and the old one is refused afterwards.
  const first = await postForm(`${issuer}/oauth2/token`, { grant_type: 'refresh_token', refresh_token: out[0] }, { basic: [clientId, secret] });
  if (first.status !== 200 || !first.json?.refresh_token) fail(`refresh: HTTP ${first.status} ${first.text.slice(0, 300)}`);
  out[0] = first.json.refresh_token;
  process.stdout.write(`${out.join('\n')}\n`);
}

async function loginForm([issuer]) {
  const jar = new CookieJar();
  const page = await jarFetch(jar, `${issuer}/login?return_to=%2Faccount`);
  const csrf = inputValue(await page.text(), 'csrf_token');
  if (page.status !== 200 || !csrf) fail(`GET /login: HTTP ${page.status}, csrf ${csrf}`);
  console.log(JSON.stringify({ cookie: jar.header(), csrf }));
}

const [cmd, ...args] = process.argv.slice(2);
const commands = { check, refresh, 'login-form': loginForm };
if (!commands[cmd]) fail(`unknown command ${cmd}; one of ${Object.keys(commands).join(', ')}`);
await commands[cmd](args);
