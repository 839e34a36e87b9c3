// The demo journey (issue: tessera-verify and the revocation feed): a single-page app signs
// in with Tessera (code + PKCE), calls an API protected by tessera-verify, and the API stops
// accepting the token within 2 s of the session being ended through the CLI, although the
// JWT has not expired.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser } from './lib/tessera.mjs';

const CHEAP = { TESSERA_PASSWORD__MEMORY_KIB: '1024', TESSERA_PASSWORD__ITERATIONS: '1', TESSERA_LOG__LEVEL: 'warn' };

async function demoLines(server) {
  for (let i = 0; i < 100; i++) {
    const out = server.output();
    const app = out.match(/Demo app: (http:\/\/localhost:\d+\/)/);
    const creds = out.match(/Sign in as (\S+) \/ (\S+)/);
    if (app && creds) return { appUrl: app[1], username: creds[1], password: creds[2] };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the demo did not print its app URL and credentials\n${server.output()}`);
}

test('demo: sign in, call the API, end the session, the API refuses within 2 s', async (t) => {
  const server = await startServer({ env: CHEAP, args: ['demo', '--port', '0'] });
  const browser = await launchBrowser();
  t.after(async () => { await browser.close(); await server.stop(); });
  const { appUrl, username, password } = await demoLines(server);

  const page = await (await browser.newContext()).newPage();
  await page.goto(appUrl);
  await page.waitForSelector('body[data-ready="true"]');
  await Promise.all([page.waitForURL((u) => u.pathname === '/login'), page.click('#sign-in')]);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/oauth2/authorize')), page.click('button[type=submit]')]);
  // Consent for the demo app.
  await Promise.all([page.waitForURL((u) => u.href.startsWith(appUrl)), page.click('button[name=decision][value=allow]')]);
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Signed in'));
  assert.match(await page.textContent('#status'), /Signed in as demo/);
  // Tokens stay in memory: nothing in web storage but (nothing, after the redirect).
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'no tokens in localStorage');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the PKCE state was cleared');

  await page.click('#call-api');
  await page.waitForFunction(() => document.getElementById('api-status').textContent !== '–');
  assert.equal(await page.textContent('#api-status'), '200');
  const claims = JSON.parse(await page.textContent('#api-result'));
  assert.ok(claims.sub, 'the API answered with the user\'s claims');
  assert.ok(claims.sid, 'the token carries the session id');
  assert.match(claims.scope, /openid/);

  // End the session through the CLI; the access token has not expired (5 minutes).
  const ended = await server.cli(['user', 'end-sessions', '--username', username]);
  assert.ok(ended.sessions_ended >= 1, JSON.stringify(ended));
  const endedAt = Date.now();
  let status = '200';
  while (Date.now() - endedAt < 2000) {
    await page.click('#call-api');
    await page.waitForTimeout(100);
    status = await page.textContent('#api-status');
    if (status === '401') break;
  }
  const elapsed = Date.now() - endedAt;
  t.diagnostic(`API refused the token ${elapsed} ms after the session was ended`);
  assert.equal(status, '401', `the API still accepted the token ${elapsed} ms after the session ended`);
  assert.ok(elapsed < 2000);
  assert.match(await page.textContent('#api-result'), /invalid_token/);
});
