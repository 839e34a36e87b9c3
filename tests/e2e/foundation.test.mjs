// Foundation: sign-in, sessions, sign-out, uniform login failures, TLS, page conventions.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  scenario, signIn, clickAndWait, sessionCookie, pathOf, SESSION_COOKIE,
} from './lib/tessera.mjs';

const ALICE = {
  username: 'alice',
  email: 'alice@example.com',
  name: 'Alice Example',
  password: 'correct horse battery staple',
};
const BOB = {
  username: 'bob',
  email: 'bob@example.com',
  name: 'Bob Example',
  password: 'tr0ub4dor and three more words',
};

async function createUser(server, u) {
  const out = await server.cli(
    ['user', 'create', '--username', u.username, '--email', u.email, '--name', u.name, '--password-stdin'],
    { stdin: `${u.password}\n` },
  );
  assert.equal(typeof out, 'object', 'user create prints a JSON object');
  assert.ok(out.id, `user create prints an id: ${JSON.stringify(out)}`);
  assert.equal(out.username, u.username);
  return out;
}

/** Signs in and asserts that the browser ends up on the account page of `username`. */
async function signInOk(page, url, u) {
  await signIn(page, url, u.username, u.password);
  assert.equal(pathOf(page), '/account', `after signing in as ${u.username} the page is /account, not ${page.url()}`);
  assert.ok(page.url().endsWith('/account'), `URL ends with /account: ${page.url()}`);
  assert.equal((await page.textContent('#account-username'))?.trim(), u.username);
}

const ROWS = 'table.sessions tbody tr';

test('sign in, see two sessions, end the other, sign out', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const { url } = server;
    assert.match(url, /^http:\/\//);
    const created = await createUser(server, ALICE);
    assert.equal(created.username, 'alice');

    // Context A: the cookie before and after signing in.
    const ctxA = await newContext();
    const pageA = await ctxA.newPage();
    const loginResp = await pageA.goto(`${url}/login`);
    assert.equal(loginResp.status(), 200, 'GET /login is 200');
    const before = await sessionCookie(ctxA, url);
    if (before) t.diagnostic(`the login page sets ${SESSION_COOKIE} before sign-in`);

    await pageA.fill('#username', ALICE.username);
    await pageA.fill('#password', ALICE.password);
    await clickAndWait(pageA, pageA.locator('button[type=submit]'));
    assert.equal(pathOf(pageA), '/account', `signed in, on /account (at ${pageA.url()})`);
    assert.ok(pageA.url().endsWith('/account'));
    assert.equal((await pageA.textContent('#account-username'))?.trim(), 'alice');

    const after = await sessionCookie(ctxA, url);
    assert.ok(after, `a ${SESSION_COOKIE} cookie is set after sign-in`);
    assert.equal(after.httpOnly, true, 'session cookie is HttpOnly');
    assert.equal(after.sameSite, 'Lax', 'session cookie is SameSite=Lax');
    assert.ok(!after.domain.startsWith('.'), `session cookie is host-only (domain ${after.domain})`);
    assert.equal(after.domain, new URL(url).hostname, 'session cookie domain is the host itself');
    assert.equal(after.secure, false, 'session cookie is not Secure over plain http');
    if (before) assert.notEqual(after.value, before.value, 'session cookie value changes at sign-in');

    // Context B: a second device.
    const ctxB = await newContext();
    const pageB = await ctxB.newPage();
    await signInOk(pageB, url, ALICE);
    const cookieB = await sessionCookie(ctxB, url);
    assert.ok(cookieB);
    assert.notEqual(cookieB.value, after.value, 'two devices get different session cookies');

    // A sees both sessions, exactly one marked current.
    await pageA.reload();
    assert.equal(pathOf(pageA), '/account');
    assert.equal(await pageA.locator(ROWS).count(), 2, 'two session rows');
    assert.equal(await pageA.locator(`${ROWS}.current`).count(), 1, 'exactly one current row');
    assert.equal(await pageA.locator(`${ROWS}[data-session]`).count(), 2, 'rows carry data-session');
    assert.equal(
      await pageA.locator(`${ROWS}.current button`, { hasText: 'End session' }).count(), 0,
      'the current row has no End session button',
    );

    // A ends B's session.
    const other = pageA.locator(`${ROWS}:not(.current)`);
    assert.equal(await other.count(), 1);
    await clickAndWait(pageA, other.locator('button', { hasText: 'End session' }));
    assert.equal(pathOf(pageA), '/account', `after ending a session A is back on /account (at ${pageA.url()})`);
    assert.equal(await pageA.locator(ROWS).count(), 1, 'one session row left');
    assert.equal(await pageA.locator(`${ROWS}.current`).count(), 1, 'the row left is the current one');

    // B is signed out.
    await pageB.goto(`${url}/account`);
    assert.ok(pageB.url().includes('/login'), `B is sent to the login page, not ${pageB.url()}`);

    // A signs out.
    await clickAndWait(pageA, pageA.locator('form.logout button', { hasText: 'Sign out' }));
    assert.equal(pathOf(pageA), '/login', `after signing out A is on /login (at ${pageA.url()})`);
    await pageA.goto(`${url}/account`);
    assert.equal(pathOf(pageA), '/login', `after signing out /account leads to /login (at ${pageA.url()})`);
  });
});

test('wrong password, unknown user and disabled user get the same message', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const { url } = server;
    await createUser(server, ALICE);
    await createUser(server, BOB);

    const ctx = await newContext();
    const page = await ctx.newPage();

    /** Submits the login form; asserts it failed; resolves to the alert text. */
    async function failedSignIn(username, password, label) {
      const resp = await signIn(page, url, username, password);
      assert.equal(pathOf(page), '/login', `${label}: still on the login page (at ${page.url()})`);
      assert.equal(resp.status(), 401, `${label}: POST /login answers 401`);
      // Only visible alerts: with passkeys on, the page also holds an empty, hidden
      // [role=alert] for passkey errors (#passkey-error).
      const alert = page.locator('[role=alert]:visible');
      assert.equal(await alert.count(), 1, `${label}: one visible [role=alert]`);
      const text = (await alert.textContent()).trim();
      assert.ok(text.length > 0, `${label}: the alert has text`);
      assert.equal(await page.inputValue('#username'), username, `${label}: the username field keeps its value`);
      assert.equal(await page.inputValue('#password'), '', `${label}: the password field is empty`);
      assert.equal(await sessionCookieIsSignedIn(), false, `${label}: not signed in`);
      return text;
    }
    async function sessionCookieIsSignedIn() {
      const r = await page.context().request.get(`${url}/account`, { maxRedirects: 0 });
      return r.status() === 200;
    }

    const wrongAlice = await failedSignIn('alice', 'not the password', 'wrong password for alice');
    const wrongBob = await failedSignIn('bob', 'not the password either', 'wrong password for bob');
    const unknown = await failedSignIn('mallory', ALICE.password, 'unknown user');
    assert.equal(wrongBob, wrongAlice, 'same message for wrong password (bob) as (alice)');
    assert.equal(unknown, wrongAlice, 'same message for an unknown user as for a wrong password');
    t.diagnostic(`login failure message: ${JSON.stringify(wrongAlice)}`);

    await t.test('disabled user', async (st) => {
      // Bob's password is right: first prove it works, then disable him.
      const ctxBob = await newContext();
      const pageBob = await ctxBob.newPage();
      await signInOk(pageBob, url, BOB);
      await ctxBob.close();

      let disabled;
      try {
        disabled = await server.cli(['user', 'disable', '--username', 'bob']);
      } catch (e) {
        st.diagnostic(`SKIPPED: \`tessera user disable --username bob\` is not available yet: ${e.message.split('\n').slice(0, 3).join(' | ')}`);
        st.skip('`tessera user disable` not implemented');
        return;
      }
      st.diagnostic(`user disable printed ${JSON.stringify(disabled)}`);
      const msg = await failedSignIn('bob', BOB.password, 'disabled user');
      assert.equal(msg, wrongAlice, 'same message for a disabled user as for a wrong password');
    });
  });
});

test('over https with TLS terminated by serve', async (t) => {
  await scenario(t, { tls: true }, async ({ server, newContext }) => {
    const { url } = server;
    assert.match(url, /^https:\/\//, `serve prints an https URL: ${url}`);
    await createUser(server, ALICE);

    const ctx = await newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    await signInOk(page, url, ALICE);

    // Over https every cookie of ours carries the __Host- prefix (Secure, Path=/, no Domain).
    const cookies = await ctx.cookies(url);
    const cookie = cookies.find((c) => c.name === `__Host-${SESSION_COOKIE}`);
    assert.ok(cookie, `__Host-${SESSION_COOKIE} is set over https: ${cookies.map((c) => c.name)}`);
    assert.equal(cookie.path, '/');
    assert.ok(!cookies.some((c) => c.name.startsWith('tessera_')), 'no unprefixed cookies of ours');
    assert.equal(cookie.secure, true, 'session cookie is Secure over https');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');

    const resp = await page.goto(`${url}/account`);
    assert.equal(resp.status(), 200);
    assert.equal(pathOf(page), '/account');
    const hsts = resp.headers()['strict-transport-security'];
    assert.ok(hsts, 'the account page has a Strict-Transport-Security header');
    assert.match(hsts, /max-age=\d+/i, `HSTS has a max-age: ${hsts}`);
    t.diagnostic(`strict-transport-security: ${hsts}`);
  });
});

test('login page follows form conventions and loads without console errors', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const { url } = server;
    const ctx = await newContext();
    const page = await ctx.newPage();
    const errors = [];
    const ignored = [];
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const loc = msg.location()?.url ?? '';
      // Chromium fetches /favicon.ico by itself and logs a 404 for it; that is
      // not something the page asked for.
      if (new URL(loc || 'about:blank', url).pathname === '/favicon.ico') {
        ignored.push(msg.text());
        return;
      }
      errors.push(`console error: ${msg.text()} (${loc})`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));

    const resp = await page.goto(`${url}/login`);
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()['content-type'] ?? '', /text\/html/);
    await page.waitForLoadState('load');

    const username = page.locator('input[name=username]');
    const password = page.locator('input[name=password]');
    assert.equal(await username.count(), 1);
    assert.equal(await password.count(), 1);
    // "username webauthn" when passkeys are on (conditional UI in the autofill).
    assert.match(await username.getAttribute('autocomplete'), /^username( webauthn)?$/);
    assert.equal(await password.getAttribute('autocomplete'), 'current-password');
    assert.equal(await password.getAttribute('type'), 'password');

    for (const [field, input] of [['username', username], ['password', password]]) {
      const id = await input.getAttribute('id');
      assert.ok(id, `${field} input has an id`);
      const label = page.locator(`label[for="${id}"]`);
      assert.equal(await label.count(), 1, `one <label for="${id}">`);
      assert.ok(await label.isVisible(), `the label for ${field} is visible`);
      assert.ok((await label.textContent()).trim().length > 0, `the label for ${field} has text`);
    }
    assert.equal(await page.locator('input[type=hidden][name=csrf_token]').count(), 1, 'a csrf_token field');
    assert.equal(await page.locator('input[type=hidden][name=return_to]').count(), 1, 'a return_to field');
    const form = page.locator('form:has(input[name=password])');
    assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post');
    assert.equal(await form.getAttribute('action'), '/login');
    assert.equal(await page.locator('html').getAttribute('lang') !== null, true, '<html> has a lang');
    assert.ok((await page.title()).trim().length > 0, 'the page has a title');

    // Give late resource loads a moment to report.
    await page.waitForTimeout(300);
    if (ignored.length) t.diagnostic(`ignored: ${ignored.join('; ')}`);
    assert.deepEqual(errors, [], 'no console errors on the login page');
  });
});
