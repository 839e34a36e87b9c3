// Defences (SPEC §1.7) in a real browser: an account under a password-guessing attack
// gets a proof-of-work challenge on its login page; the page's script (/static/pow.js)
// solves it and the real user signs in. The solve time at the default 18 bits is reported
// as a test diagnostic.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { scenario, clickAndWait, pathOf } from './lib/tessera.mjs';
import { ALICE, FORM, CookieJar, jarFetch, inputValue, createUser } from './lib/oauth.mjs';

const ACCOUNT_FAILURES = 3;
const ENV = {
  TESSERA_THROTTLE__ACCOUNT_FAILURES: String(ACCOUNT_FAILURES),
  TESSERA_PASSWORD__MEMORY_KIB: '1024',
  TESSERA_PASSWORD__ITERATIONS: '1',
};
const SOLVE_TIMEOUT_MS = 180_000;

/** Leading zero bits of SHA-256(challenge ":" nonce), as the server counts them. */
function zeroBits(challenge, nonce) {
  const d = createHash('sha256').update(`${challenge}:${nonce}`).digest();
  let n = 0;
  for (const b of d) {
    if (b === 0) { n += 8; continue; }
    return n + Math.clz32(b) - 24;
  }
  return n;
}

/** `count` wrong passwords for `username` by fetch; resolves to the statuses. */
async function guess(url, username, count) {
  const jar = new CookieJar();
  const page = await jarFetch(jar, `${url}/login`);
  const csrf = inputValue(await page.text(), 'csrf_token');
  assert.ok(csrf, 'the login page has a csrf_token');
  const out = [];
  for (let i = 0; i < count; i++) {
    const res = await jarFetch(jar, `${url}/login`, {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({ csrf_token: csrf, return_to: '/account', username, password: `wrong guess ${i}` }),
    });
    out.push({ status: res.status, retryAfter: res.headers.get('retry-after'), html: await res.text() });
  }
  return out;
}

/** Submits the login form on `page` (already on /login) and waits for the next page. */
async function submitLogin(page, username, password) {
  await page.fill('#username', username);
  await page.fill('#password', password);
  const post = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login',
    { timeout: 15_000 },
  );
  await clickAndWait(page, page.locator('button[type=submit]'));
  return post;
}

/** The challenge shown on the current page. */
async function challengeOn(page) {
  const field = page.locator('#pow-challenge');
  assert.equal(await field.count(), 1, 'the login page shows a proof-of-work challenge');
  const token = await field.inputValue();
  const bits = Number(await field.getAttribute('data-bits'));
  assert.ok(token.length > 20, `a challenge token: ${token}`);
  assert.equal(await page.locator('script[src="/static/pow.js"]').count(), 1, 'the page loads /static/pow.js');
  return { token, bits };
}

test('an account under attack: the login page solves a proof of work and the user signs in', async (t) => {
  await scenario(t, { env: ENV }, async ({ server, newContext }) => {
    const { url } = server;
    await createUser(server, ALICE);

    // The attacker: ACCOUNT_FAILURES wrong guesses are checked, the next one is refused.
    const guesses = await guess(url, ALICE.username, ACCOUNT_FAILURES + 1);
    assert.deepEqual(guesses.map((g) => g.status), [...Array(ACCOUNT_FAILURES).fill(401), 429]);
    const refused = guesses.at(-1);
    assert.match(refused.retryAfter ?? '', /^\d+$/, 'a numeric Retry-After');
    assert.ok(inputValue(refused.html, 'pow_challenge'), 'the 429 page carries a challenge');

    // The real user, in a browser, with the right password: challenged first.
    const ctx = await newContext();
    const page = await ctx.newPage();
    const consoleErrors = [];
    // Chromium logs every 4xx document or favicon as "Failed to load resource"; anything
    // else (a script error, a CSP violation) is a failure.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.goto(`${url}/login`);
    const first = await submitLogin(page, ALICE.username, ALICE.password);
    assert.equal(first.status(), 429, 'the right password without a solution is refused');
    assert.match(first.headers()['retry-after'] ?? '', /^\d+$/);
    assert.equal(pathOf(page), '/login');
    assert.match((await page.textContent('[role=alert]')) ?? '', /Too many failed sign-in attempts/);
    const { token, bits } = await challengeOn(page);
    assert.equal(bits, 18, 'the default difficulty');
    const started = Date.now();

    // The script solves it while the user types; the status says when it is ready.
    await page.waitForFunction(
      () => document.getElementById('pow-nonce')?.value !== '',
      null,
      { timeout: SOLVE_TIMEOUT_MS, polling: 10 },
    );
    const solveMs = Date.now() - started;
    const nonce = await page.locator('#pow-nonce').inputValue();
    assert.match(nonce, /^\d+$/);
    assert.ok(zeroBits(token, nonce) >= bits, `SHA-256(challenge:${nonce}) has ${bits} leading zero bits`);
    assert.match((await page.textContent('#pow-status')) ?? '', /Ready/);
    const hashes = Number(nonce) + 1;
    t.diagnostic(`pow.js solved ${bits} bits in ${solveMs} ms (${hashes} hashes, ${Math.round(hashes / (solveMs / 1000))} H/s)`);
    console.log(`[defences] pow.js: ${bits} bits solved in ${solveMs} ms, ${hashes} hashes, ${Math.round(hashes / (solveMs / 1000))} H/s`);

    const second = await submitLogin(page, ALICE.username, ALICE.password);
    assert.equal(second.status(), 303, 'the solved challenge lets the right password in');
    assert.equal(pathOf(page), '/account', `signed in, on /account (at ${page.url()})`);
    assert.equal((await page.textContent('#account-username'))?.trim(), ALICE.username);
    assert.deepEqual(consoleErrors, [], 'no script errors (and no CSP violations)');

    // The used solution cannot be replayed by an attacker who saw it.
    await guess(url, ALICE.username, ACCOUNT_FAILURES);
    const jar = new CookieJar();
    const csrf = inputValue(await (await jarFetch(jar, `${url}/login`)).text(), 'csrf_token');
    const replay = await jarFetch(jar, `${url}/login`, {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({
        csrf_token: csrf, return_to: '/account', username: ALICE.username, password: ALICE.password,
        pow_challenge: token, pow_nonce: nonce,
      }),
    });
    assert.equal(replay.status, 429, 'a replayed solution is refused');
  });
});

test('submitting before the puzzle is solved waits for it, then signs in', async (t) => {
  await scenario(t, { env: ENV }, async ({ server, newContext }) => {
    const { url } = server;
    await createUser(server, ALICE);
    await guess(url, ALICE.username, ACCOUNT_FAILURES);

    const ctx = await newContext();
    const page = await ctx.newPage();
    await page.goto(`${url}/login`);
    const first = await submitLogin(page, ALICE.username, ALICE.password);
    assert.equal(first.status(), 429);
    await challengeOn(page);

    // Type and press Enter at once: the script holds the submission until it has a nonce.
    const started = Date.now();
    const posted = page.waitForRequest(
      (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/login',
      { timeout: SOLVE_TIMEOUT_MS },
    );
    await page.fill('#password', ALICE.password);
    await page.locator('button[type=submit]').click();
    const req = await posted;
    const body = new URLSearchParams(req.postData() ?? '');
    assert.match(body.get('pow_nonce') ?? '', /^\d+$/, 'the held submission carries the nonce');
    assert.ok(body.get('pow_challenge'), 'and the challenge');
    await page.waitForURL((u) => new URL(u).pathname === '/account', { timeout: 30_000 });
    const ms = Date.now() - started;
    t.diagnostic(`submit → /account with the solve in between: ${ms} ms (nonce ${body.get('pow_nonce')})`);
    console.log(`[defences] held submit: /account after ${ms} ms (nonce ${body.get('pow_nonce')})`);
    assert.equal((await page.textContent('#account-username'))?.trim(), ALICE.username);
  });
});
