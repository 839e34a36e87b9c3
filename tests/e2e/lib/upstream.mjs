// Upstream providers for the federation tests, on loopback ports:
// - a real OpenID provider, npm `oidc-provider` (OpenID Certified), whose development
//   interactions accept any login name; findAccount returns sub, email, email_verified;
// - a tiny GitHub-style OAuth 2.0 server (node:http): /authorize redirects straight back
//   with a code, /token checks PKCE and the client secret (in the form, as GitHub takes it),
//   /user and /user/emails answer for the bearer.

import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

export const CLIENT_ID = 'tessera';
export const CLIENT_SECRET = 'upstream-secret-0123456789';

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/**
 * Starts oidc-provider for `redirectUris`. `verified(login)` says whether the address of
 * that login is verified (default: yes); the address is the login if it has an `@`,
 * else `<login>@corp.example`.
 * Resolves to { issuer, close() }.
 */
export async function startOidcProvider(redirectUris, { verified = () => true } = {}) {
  const server = http.createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'upstream-rs256', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    async findAccount(ctx, sub) {
      const email = sub.includes('@') ? sub : `${sub}@corp.example`;
      return {
        accountId: sub,
        async claims() {
          return { sub, email, email_verified: verified(sub), preferred_username: sub.split('@')[0] };
        },
      };
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider error:', err));
  server.on('request', provider.callback());
  return { issuer, close: () => new Promise((r) => server.close(() => r())) };
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * Starts the GitHub-style server. `user` is what /user answers; `emails` what
 * /user/emails answers. Resolves to { base, close(), requests }.
 */
export async function startGitHubStyle({ user, emails }) {
  const codes = new Map(); // code → { challenge, redirectUri }
  const tokens = new Set();
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push(`${req.method} ${url.pathname}`);
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      if (q.get('client_id') !== CLIENT_ID || q.get('code_challenge_method') !== 'S256') {
        res.writeHead(400).end('bad request');
        return;
      }
      const code = b64url(randomBytes(16));
      codes.set(code, { challenge: q.get('code_challenge'), redirectUri: q.get('redirect_uri') });
      const back = new URL(q.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state'));
      res.writeHead(302, { location: back.toString() }).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        const f = new URLSearchParams(body);
        const c = codes.get(f.get('code'));
        codes.delete(f.get('code'));
        if (f.get('client_id') !== CLIENT_ID || f.get('client_secret') !== CLIENT_SECRET) {
          json(200, { error: 'incorrect_client_credentials' }); // GitHub answers errors with 200
          return;
        }
        const s256 = b64url(createHash('sha256').update(f.get('code_verifier') ?? '').digest());
        if (!c || c.challenge !== s256 || c.redirectUri !== f.get('redirect_uri')) {
          json(200, { error: 'bad_verification_code' });
          return;
        }
        const token = `gho_${b64url(randomBytes(16))}`;
        tokens.add(token);
        json(200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
      });
      return;
    }
    const bearer = (req.headers.authorization ?? '').replace(/^Bearer /i, '');
    if (!tokens.has(bearer)) {
      json(401, { message: 'Bad credentials' });
      return;
    }
    if (url.pathname === '/user') return json(200, user);
    if (url.pathname === '/user/emails') return json(200, emails);
    json(404, { message: 'Not Found' });
  });
  const port = await listen(server);
  return { base: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}
