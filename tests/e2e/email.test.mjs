// E-mail flows against a real SMTP server (npm smtp-server): password reset from the
// captured mail's link in the same browser, a plain GET from another client using nothing
// up, the old refresh token refused afterwards, and an unknown address getting the same page
// and no mail.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { scenario, clickAndWait, sessionCookie } from './lib/tessera.mjs';
import { ALICE, createUser, createClient, startCallbackServer, discover, newChecks, expectOAuthError, browserAuthorize } from './lib/oauth.mjs';
import { startSmtp, linkIn } from './lib/smtp.mjs';

const NEW_PASSWORD = 'an entirely new and long passphrase 2026';

/** scenario() with a capturing SMTP server and alice. */
async function mailScenario(t, fn, env = {}) {
  const smtp = await startSmtp();
  try {
    await scenario(t, { env: { TESSERA_EMAIL__SMTP_URL: smtp.url, TESSERA_EMAIL__FROM: 'Tessera <id@example.test>', ...env } }, async (ctx) => {
      await createUser(ctx.server, ALICE);
      await fn({ ...ctx, smtp });
    });
  } finally {
    await smtp.close();
  }
}

/** Asks for a reset of `address` from `page`; resolves to the page's text. */
async function askReset(page, base, address) {
  await page.goto(`${base}/login`);
  await clickAndWait(page, page.getByRole('link', { name: /Forgot/ }));
  assert.equal(new URL(page.url()).pathname, '/login/forgot');
  await page.fill('#email', address);
  await clickAndWait(page, page.locator('button[type=submit]'));
  return page.textContent('main').catch(() => page.textContent('body'));
}

/** A relying party (a registered client and a callback server) for code flows. */
async function relyingParty(server) {
  const cb = await startCallbackServer();
  const redirectUri = cb.url('/cb');
  const c = await createClient(server, { name: 'Mail RP', redirectUris: [redirectUri], skipConsent: true });
  const config = await discover(server.url, c.client_id, c.client_secret, client.ClientSecretBasic(c.client_secret));
  /** Runs a code flow in `page` (signing in as alice if asked); resolves to the tokens. */
  async function codeFlow(page, scope) {
    const checks = await newChecks();
    const authUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope, code_challenge: checks.codeChallenge,
      code_challenge_method: 'S256', state: checks.state, nonce: checks.nonce,
    });
    const result = await browserAuthorize(page, authUrl, cb.base, { user: ALICE });
    return client.authorizationCodeGrant(config, result.url, {
      pkceCodeVerifier: checks.pkceCodeVerifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true,
    });
  }
  return { config, codeFlow, close: () => cb.close() };
}

/** A refresh token for alice from a code flow driven in `page`. */
async function refreshTokenFor(server, page) {
  const rp = await relyingParty(server);
  try {
    const tokens = await rp.codeFlow(page, 'openid offline_access');
    assert.equal(typeof tokens.refresh_token, 'string');
    return { config: rp.config, refreshToken: tokens.refresh_token };
  } finally {
    await rp.close();
  }
}

test('password reset: the mailed link works in the asking browser, once, and ends old grants', async (t) => {
  await mailScenario(t, async ({ server, newContext, smtp }) => {
    // An RP holds a refresh token from before the reset (offline_access: it outlives sign-outs).
    const rpContext = await newContext();
    const { config, refreshToken } = await refreshTokenFor(server, await rpContext.newPage());

    const context = await newContext();
    const page = await context.newPage();
    const text = await askReset(page, server.url, ALICE.email);
    assert.match(text, /If an account with that address exists/);
    const mail = await smtp.waitFor((m) => m.to.includes(ALICE.email));
    assert.equal(mail.subject, 'Reset your password');
    assert.match(mail.from, /id@example\.test/);
    const link = linkIn(mail.text, `${server.url}/login/reset?token=`);
    assert.ok(link, `the text body carries a link to the issuer: ${mail.text}`);
    assert.ok(mail.html.includes(link.replace(/&/g, '&amp;')) || mail.html.includes(link), 'the HTML body carries it too');

    // A mail scanner (a plain GET from another client) uses nothing up.
    for (let i = 0; i < 2; i++) {
      const scan = await fetch(link, { redirect: 'manual' });
      assert.equal(scan.status, 200);
      const body = await scan.text();
      assert.doesNotMatch(body, /name="password"/, 'no password form for another client');
    }
    // Nor does another browser.
    const otherPage = await (await newContext()).newPage();
    await otherPage.goto(link);
    assert.match(await otherPage.textContent('body'), /browser where you asked/);

    // The asking browser sets the new password.
    await page.goto(link);
    await page.fill('#password', NEW_PASSWORD);
    await page.fill('#confirm', NEW_PASSWORD);
    await clickAndWait(page, page.locator('button[type=submit]'));
    assert.match(await page.textContent('body'), /Password changed/);

    // Once only.
    await page.goto(link);
    assert.match(await page.textContent('body'), /expired or has already been used/);

    // The refresh token from before the reset is dead.
    await expectOAuthError(() => client.refreshTokenGrant(config, refreshToken), 'invalid_grant', 'refresh token after a password reset', 400);
    // And the RP's browser session has ended.
    assert.equal(await sessionCookie(rpContext, server.url).then(async (c) => {
      if (!c) return 'gone';
      const res = await fetch(`${server.url}/account`, { headers: { cookie: `tessera_session=${c.value}` }, redirect: 'manual' });
      return res.status === 303 ? 'gone' : `live (${res.status})`;
    }), 'gone');

    // The new password signs in.
    await page.goto(`${server.url}/login`);
    await page.fill('#username', ALICE.username);
    await page.fill('#password', NEW_PASSWORD);
    await clickAndWait(page, page.locator('button[type=submit]'));
    assert.equal(new URL(page.url()).pathname, '/account');
  });
});

test('password reset: an unknown address gets the same page and no mail', async (t) => {
  await mailScenario(t, async ({ server, newContext, smtp }) => {
    const page = await (await newContext()).newPage();
    const known = await askReset(page, server.url, ALICE.email);
    await smtp.waitFor((m) => m.to.includes(ALICE.email));
    const unknown = await askReset(page, server.url, 'nobody@example.com');
    assert.equal(unknown, known, 'the same page');
    await new Promise((r) => setTimeout(r, 2500)); // the mail job runs every second
    assert.deepEqual(smtp.messages.map((m) => m.to).flat(), [ALICE.email], 'no mail for the unknown address');
  });
});

test('verification: the mailed link flips email_verified in the next ID token', async (t) => {
  await mailScenario(t, async ({ server, newContext, smtp }) => {
    const rp = await relyingParty(server);
    try {
      const page = await (await newContext()).newPage();
      const first = await rp.codeFlow(page, 'openid email');
      assert.equal(first.claims().email, ALICE.email);
      assert.equal(first.claims().email_verified, false, 'not verified yet');

      await page.goto(`${server.url}/account`);
      assert.match(await page.textContent('#email-status'), /not confirmed/);
      await clickAndWait(page, page.locator('#verify-email'));
      const mail = await smtp.waitFor((m) => m.subject === 'Confirm your e-mail address');
      const link = linkIn(mail.text, `${server.url}/email/verify?token=`);
      assert.ok(link, mail.text);
      // A scanner's fetch confirms nothing.
      const scan = await fetch(link);
      assert.doesNotMatch(await scan.text(), /name="token"/);
      await page.goto(link);
      await clickAndWait(page, page.locator('#verify-confirm'));
      assert.match(await page.textContent('body'), /Address confirmed/);

      const second = await rp.codeFlow(page, 'openid email');
      assert.equal(second.claims().email_verified, true, 'verified in the next ID token');
      const info = await client.fetchUserInfo(rp.config, second.access_token, second.claims().sub);
      assert.equal(info.email_verified, true, 'and in userinfo');
    } finally {
      await rp.close();
    }
  });
});

test('sign-in by e-mail: a mailed code signs in once and only once', async (t) => {
  await mailScenario(t, async ({ server, newContext, smtp }) => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/login`);
    await clickAndWait(page, page.getByRole('link', { name: /Email me a sign-in code/ }));
    await page.fill('#email', ALICE.email);
    await clickAndWait(page, page.locator('button[type=submit]'));
    const mail = await smtp.waitFor((m) => m.subject === 'Your sign-in code');
    const code = mail.text.split('\n').map((l) => l.trim()).find((l) => /^\d{6}$/.test(l));
    assert.ok(code, `the code is on a line of its own: ${mail.text}`);
    const link = linkIn(mail.text, `${server.url}/login/email/link?token=`);
    assert.ok(link);

    // The link in another browser signs nobody in.
    const other = await (await newContext()).newPage();
    await other.goto(link);
    assert.match(await other.textContent('body'), /browser where you asked/);
    assert.equal(await sessionCookie(other.context(), server.url), undefined);

    await page.fill('#code', code);
    await clickAndWait(page, page.locator('button[type=submit]'));
    assert.equal(new URL(page.url()).pathname, '/account', 'signed in');
    assert.ok(await sessionCookie(context, server.url));

    // Once only: the same code in a fresh browser, and the mail's link here, do nothing.
    const again = await (await newContext()).newPage();
    await again.goto(`${server.url}/login/email`);
    await again.fill('#email', ALICE.email);
    await clickAndWait(again, again.locator('button[type=submit]'));
    await again.fill('#code', code);
    await clickAndWait(again, again.locator('button[type=submit]'));
    assert.notEqual(new URL(again.url()).pathname, '/account');
    assert.match(await again.textContent('body'), /does not work/);
    await page.goto(link);
    assert.match(await page.textContent('body'), /expired or has already been used/);
  }, { TESSERA_EMAIL__MAGIC_LINK: 'true' });
});
