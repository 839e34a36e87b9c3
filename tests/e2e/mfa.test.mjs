// Strong authentication: passkeys (Chromium's virtual authenticators over CDP), TOTP (codes
// from otplib, an independent implementation), recovery codes, the multi-factor policy of
// OAuth clients, step-up with acr_values, max_age re-authentication, and the
// recent-sign-in rule for sensitive account changes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import * as jose from 'jose';
import { authenticator } from 'otplib';
import { scenario, signIn, clickAndWait, pathOf } from './lib/tessera.mjs';
import {
  ALICE, createUser, createClient, withServer, startCallbackServer, discover, newChecks,
} from './lib/oauth.mjs';

const BOB = {
  username: 'bob',
  email: 'bob@example.com',
  name: 'Bob Example',
  password: 'tr0ub4dor and three more words',
};

const ACR_SINGLE = 'urn:tessera:acr:single-factor';
const ACR_MFA = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';
const ACR_PHR = 'phr';

// ---------------------------------------------------------------------------
// TOTP: codes from otplib for a given 30-second step (step = floor(unix seconds / 30)).

const STEP_MS = 30_000;

function currentStep() {
  return Math.floor(Date.now() / STEP_MS);
}

/** The code otplib computes for `secret` (base32) at TOTP step `step`. */
function totpCode(secret, step) {
  return authenticator.clone({ epoch: step * STEP_MS + 1_000 }).generate(secret);
}

/**
 * A test that uses the previous step's code, then the current one, then the next one
 * (three codes without waiting for the clock) needs the server's "±1 step" window to
 * still include the previous step when the first code arrives: if the current step is
 * about to end, wait for the next one to begin (at most `margin` ms).
 */
async function awayFromStepEnd(margin = 5_000) {
  const left = STEP_MS - (Date.now() % STEP_MS);
  if (left < margin) await new Promise((r) => setTimeout(r, left + 100));
}

// ---------------------------------------------------------------------------
// Passkeys: a virtual authenticator on the page's target.

const AUTHENTICATOR = {
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};

/**
 * Adds a virtual authenticator to `page` (optionally holding `credentials` taken from
 * another one). `presence(false)` stops it from answering by itself: a conditional-UI
 * request (the login page's autofill) started then stays pending, as if the user had
 * not picked the passkey from the autofill list.
 */
async function virtualAuthenticator(page, credentials = []) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: AUTHENTICATOR });
  for (const credential of credentials) await cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
  return {
    async credentials() {
      return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
    },
    presence(enabled) {
      return cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
    },
  };
}

/**
 * Records every navigator.credentials.get() call the page makes (its mediation), so a
 * test can wait until the login page's conditional-UI request is under way. Only
 * observes: the call goes through unchanged.
 */
function observeCredentialRequests() {
  window.__credentialGets = [];
  const get = CredentialsContainer.prototype.get;
  CredentialsContainer.prototype.get = function observedGet(options) {
    window.__credentialGets.push((options && options.mediation) || 'optional');
    return get.call(this, options);
  };
}

async function conditionalRequestStarted(page) {
  await page.waitForFunction(() => (window.__credentialGets || []).includes('conditional'), null, { timeout: 15_000 });
}

/**
 * Records the provider's failed responses (status >= 400) seen by `page`, with a JSON
 * body's text, for assertion messages.
 */
function watchFailures(page) {
  const failures = [];
  page.on('response', async (r) => {
    if (r.status() < 400) return;
    let body = '';
    if ((r.headers()['content-type'] ?? '').includes('json')) body = await r.text().catch(() => '');
    failures.push(`${r.request().method()} ${r.url()} -> ${r.status()} ${body}`.trim());
  });
  return failures;
}

/**
 * Clicks a passkey button (webauthn.js runs the ceremony and then assigns
 * window.location) and waits until the URL satisfies `landed`. If the page shows its
 * passkey error instead, fails with that message.
 */
async function passkeyCeremony(page, selector, landed, failures = []) {
  const button = page.locator(selector);
  await button.waitFor({ state: 'visible', timeout: 15_000 });
  const shownError = page.waitForSelector('#passkey-error:not([hidden])', { timeout: 20_000 })
    .then(async (el) => `the page shows a passkey error: ${(await el.textContent())?.trim()}`, () => null);
  const arrived = page.waitForURL(landed, { timeout: 20_000 }).then(() => null);
  await button.click();
  const problem = await Promise.race([arrived, shownError]);
  if (problem) throw new Error(`${selector} on ${page.url()}: ${problem}; failed responses: ${JSON.stringify(failures)}`);
  await page.waitForLoadState('load');
}

const atAccount = (u) => u.pathname === '/account';

async function passkeyNames(page) {
  return (await page.locator('#passkeys li[data-passkey] .passkey-name').allTextContents()).map((s) => s.trim());
}

/** On /account (signed in recently): registers a passkey named `name` with `auth`. */
async function addPasskey(page, auth, name, failures) {
  assert.equal(pathOf(page), '/account');
  await page.fill('#passkey-name', name);
  await passkeyCeremony(page, '#passkey-add',
    (u) => u.pathname === '/account' && u.searchParams.get('done') === 'passkey_added', failures);
  assert.ok((await passkeyNames(page)).includes(name), `the new passkey "${name}" is listed: ${JSON.stringify(await passkeyNames(page))}`);
  const creds = await auth.credentials();
  assert.equal(creds.length, 1, `the authenticator holds one credential: ${JSON.stringify(creds.map((c) => c.rpId))}`);
  assert.equal(creds[0].isResidentCredential, true, 'the passkey is a resident (discoverable) credential');
  assert.equal(creds[0].rpId, 'localhost', 'the relying party id is the issuer host');
  return creds;
}

// ---------------------------------------------------------------------------
// Pages

async function signOut(page) {
  await clickAndWait(page, page.locator('form.logout button', { hasText: 'Sign out' }));
}

/** Submits the login form (the page must be on /login). */
async function submitPassword(page, user) {
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await clickAndWait(page, page.locator('form[action="/login"] button[type=submit]'));
}

/** Password sign-in that must lead to the second-factor page. */
async function signInToSecondFactor(page, url, user) {
  const post = await signIn(page, url, user.username, user.password);
  assert.equal(post.status(), 303, 'POST /login answers 303');
  assert.equal(pathOf(page), '/login/mfa', `a user with a second factor is asked for it (at ${page.url()})`);
  const pending = (await page.context().cookies(url)).find((c) => c.name === 'tessera_mfa');
  assert.ok(pending, 'the pending sign-in is carried by the tessera_mfa cookie');
  assert.equal(pending.httpOnly, true, 'tessera_mfa is HttpOnly');
  assert.equal((await page.textContent('#mfa-username'))?.trim(), user.username, 'the page names who is signing in');
  assert.equal(await page.locator('input[type=password]').count(), 0, 'no password field on the second-factor page');
}

/** Submits a second-factor form; resolves to the status of POST /login/mfa. */
async function submitSecondFactor(page, method, code) {
  if (method === 'recovery') {
    if (!(await page.locator('#recovery').evaluate((d) => d.open))) await page.click('#recovery summary');
    await page.fill('#recovery_code', code);
  } else {
    await page.fill('#code', code);
  }
  const post = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login/mfa',
    { timeout: 15_000 },
  );
  await clickAndWait(page, page.locator(`#${method === 'recovery' ? 'recovery' : 'totp'}-form button[type=submit]`));
  return (await post).status();
}

/** A refused second-factor answer: 401, an alert, still on /login/mfa. */
async function assertRefused(page, status, what) {
  assert.equal(status, 401, `${what}: POST /login/mfa answers 401`);
  assert.equal(pathOf(page), '/login/mfa', `${what}: still on the second-factor page (at ${page.url()})`);
  const alert = page.locator('#form-error[role=alert]');
  assert.equal(await alert.count(), 1, `${what}: an alert`);
  assert.ok((await alert.textContent()).trim().length > 0, `${what}: the alert has text`);
  const cookie = (await page.context().cookies(page.url())).find((c) => c.name === 'tessera_session');
  assert.equal(cookie, undefined, `${what}: no session cookie`);
}

async function recoveryLeft(page) {
  const m = /(\d+)\s+of\s+10/.exec((await page.textContent('#recovery-status')) ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * On /account: turns on the authenticator app, answering with otplib's code for TOTP
 * step `step`; reads the ten recovery codes. Resolves to { secret, codes }.
 */
async function enrolTotp(page, step = currentStep()) {
  assert.equal(pathOf(page), '/account');
  assert.match((await page.textContent('#totp-status')) ?? '', /off/, 'the authenticator app is off before enrolment');
  await clickAndWait(page, page.locator('#totp-setup'));
  assert.equal(pathOf(page), '/account/totp', `the setup page is shown (at ${page.url()})`);
  const qr = page.locator('#totp-qr');
  assert.match((await qr.getAttribute('src')) ?? '', /^data:image\/svg\+xml;base64,/, 'the QR code is an inline SVG');
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR code image renders (CSP allows it)');
  const shown = (await page.textContent('#totp-secret')) ?? '';
  assert.match(shown.trim(), /^[A-Z2-7]{4}( [A-Z2-7]{1,4})+$/, `the key is base32 in groups of four: ${shown}`);
  const secret = shown.replace(/\s+/g, '');
  assert.equal(secret.length, 32, '160-bit secret (32 base32 characters)');

  await page.fill('#code', totpCode(secret, step));
  await clickAndWait(page, page.locator('form[action="/account/totp/confirm"] button[type=submit]'));
  const codes = (await page.locator('#recovery-codes li code').allTextContents()).map((c) => c.trim());
  assert.equal(codes.length, 10, `ten recovery codes are shown (at ${page.url()}): ${JSON.stringify(codes)}`);
  for (const c of codes) assert.match(c, /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/, `recovery code format: ${c}`);
  assert.equal(new Set(codes).size, 10, 'the recovery codes are distinct');
  await clickAndWait(page, page.locator('#recovery-done'));
  assert.equal(pathOf(page), '/account');
  assert.match((await page.textContent('#totp-status')) ?? '', /\bon\b/, 'the authenticator app is on');
  assert.equal(await recoveryLeft(page), 10, '10 recovery codes left');
  return { secret, codes };
}

// ---------------------------------------------------------------------------
// OAuth

async function rpFor(server, cb, opts = {}) {
  const redirectUri = cb.url('/cb');
  const c = await createClient(server, { name: 'MFA RP', redirectUris: [redirectUri], skipConsent: true, ...opts });
  const config = await discover(server.url, c.client_id,
    { client_secret: c.client_secret, id_token_signed_response_alg: 'EdDSA' },
    client.ClientSecretBasic(c.client_secret));
  return { config, clientId: c.client_id, redirectUri };
}

/** Opens an authorization request in `page`; resolves to { checks, url, navigations }. */
async function startAuthorization(rp, page, extra = {}) {
  const checks = await newChecks();
  const url = client.buildAuthorizationUrl(rp.config, {
    redirect_uri: rp.redirectUri,
    scope: 'openid',
    code_challenge: checks.codeChallenge,
    code_challenge_method: 'S256',
    state: checks.state,
    nonce: checks.nonce,
    ...extra,
  });
  const navigations = [];
  const onResponse = (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      navigations.push({ url: r.url(), status: r.status(), location: r.headers().location });
    }
  };
  page.on('response', onResponse);
  await page.goto(url.href);
  return { checks, url, navigations, stop: () => page.off('response', onResponse) };
}

const atCallback = (cb) => (u) => u.href.startsWith(cb.base);

/**
 * The browser is at the redirect URI with a code: redeems it with openid-client and
 * verifies the ID token again with jose. Resolves to the ID token's payload.
 */
async function redeem(rp, page, checks, { maxAge } = {}) {
  const back = new URL(page.url());
  assert.equal(`${back.origin}${back.pathname}`, rp.redirectUri, `back at the redirect URI: ${back}`);
  assert.ok(back.searchParams.get('code'),
    `a code (error=${back.searchParams.get('error')}: ${back.searchParams.get('error_description')})`);
  const tokens = await client.authorizationCodeGrant(rp.config, back, {
    pkceCodeVerifier: checks.pkceCodeVerifier,
    expectedState: checks.state,
    expectedNonce: checks.nonce,
    idTokenExpected: true,
    ...(maxAge !== undefined ? { maxAge } : {}),
  });
  const md = rp.config.serverMetadata();
  const JWKS = jose.createRemoteJWKSet(new URL(md.jwks_uri));
  const { payload } = await jose.jwtVerify(tokens.id_token, JWKS, { issuer: md.issuer, audience: rp.clientId });
  assert.deepEqual(payload, tokens.claims(), 'jose and openid-client read the same ID token');
  return payload;
}

function assertAmr(claims, { has = [], lacks = [] }, what) {
  assert.ok(Array.isArray(claims.amr), `${what}: amr is an array: ${JSON.stringify(claims)}`);
  for (const m of has) assert.ok(claims.amr.includes(m), `${what}: amr ${JSON.stringify(claims.amr)} has ${m}`);
  for (const m of lacks) assert.ok(!claims.amr.includes(m), `${what}: amr ${JSON.stringify(claims.amr)} lacks ${m}`);
}

/** scenario() + a callback server. */
async function mfaScenario(t, opts, fn) {
  await scenario(t, opts, async (ctx) => {
    const cb = await startCallbackServer();
    try {
      await fn({ ...ctx, cb });
    } finally {
      await cb.close();
    }
  });
}

// ---------------------------------------------------------------------------

test('passkey: register on the account page, sign out, sign in without a password; rename and remove', async (t) => {
  await mfaScenario(t, {}, async ({ server, newContext, cb }) => {
    const { url } = server;
    await createUser(server, ALICE);
    const ctx = await newContext();
    await ctx.addInitScript(observeCredentialRequests);
    const page = await ctx.newPage();
    const failures = watchFailures(page);
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !(m.location()?.url ?? '').endsWith('/favicon.ico')) pageErrors.push(`console: ${m.text()}`);
    });

    await signIn(page, url, ALICE.username, ALICE.password);
    assert.equal(pathOf(page), '/account', `signed in with the password (at ${page.url()})`);
    assert.equal(await page.locator('#no-passkeys').count(), 1, 'no passkeys yet');

    const auth = await virtualAuthenticator(page);
    await addPasskey(page, auth, 'Test laptop', failures);
    assert.equal(await page.locator('#no-passkeys').count(), 0, '"no passkeys" is gone');

    // Sign out. The login page starts a conditional-UI request (autofill); the
    // authenticator stays silent until the button is clicked.
    await auth.presence(false);
    await signOut(page);
    assert.equal(pathOf(page), '/login', `signed out (at ${page.url()})`);
    const autocomplete = (await page.getAttribute('#username', 'autocomplete')) ?? '';
    assert.ok(autocomplete.split(/\s+/).includes('webauthn'), `#username autocomplete includes webauthn: "${autocomplete}"`);
    assert.ok(autocomplete.split(/\s+/).includes('username'), `#username autocomplete keeps username: "${autocomplete}"`);
    await conditionalRequestStarted(page);
    await auth.presence(true);
    const passwordPosts = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/login') passwordPosts.push(r.url());
    });
    await passkeyCeremony(page, '#passkey-signin', atAccount, failures);
    assert.equal(pathOf(page), '/account', `signed in with the passkey (at ${page.url()})`);
    assert.equal((await page.textContent('#account-username'))?.trim(), ALICE.username);
    assert.deepEqual(passwordPosts, [], 'no password was submitted');

    // The session is a passkey sign-in: an RP asking for phishing-resistant
    // authentication gets a code at once, amr hwk/swk + mfa, acr phr.
    const rp = await rpFor(server, cb);
    const flow = await startAuthorization(rp, page, { acr_values: ACR_PHR });
    flow.stop();
    assert.ok(page.url().startsWith(cb.base), `acr_values=phr after a passkey sign-in needs no interaction (at ${page.url()})`);
    const claims = await redeem(rp, page, flow.checks);
    assertAmr(claims, { has: ['mfa'], lacks: ['pwd'] }, 'passwordless');
    assert.ok(claims.amr.includes('hwk') || claims.amr.includes('swk'), `passkey amr has hwk or swk: ${JSON.stringify(claims.amr)}`);
    assert.equal(claims.acr, ACR_PHR, 'acr is phr');

    // Conditional UI: with the authenticator answering, the login page signs in from the
    // autofill by itself.
    await page.goto(`${url}/account`);
    await signOut(page);
    await page.waitForURL(atAccount, { timeout: 15_000 });
    await page.waitForLoadState('load');
    assert.equal((await page.textContent('#account-username'))?.trim(), ALICE.username, 'signed in through conditional UI');

    // Rename.
    const item = page.locator('#passkeys li[data-passkey]');
    assert.equal(await item.count(), 1);
    const id = await item.getAttribute('data-passkey');
    await item.locator('input[name=name]').fill('Renamed key');
    await clickAndWait(page, item.locator('button', { hasText: 'Rename' }));
    assert.equal(pathOf(page), '/account', `after renaming (at ${page.url()})`);
    assert.deepEqual(await passkeyNames(page), ['Renamed key'], 'the list shows the new name');
    assert.equal(await page.locator(`#passkeys li[data-passkey="${id}"]`).count(), 1, 'same passkey, new name');

    // Remove.
    await clickAndWait(page, page.locator(`#passkeys li[data-passkey="${id}"] button`, { hasText: 'Remove' }));
    assert.equal(pathOf(page), '/account', `after removing (at ${page.url()})`);
    assert.deepEqual(await passkeyNames(page), [], 'the list is empty');
    assert.equal(await page.locator('#no-passkeys').count(), 1, '"no passkeys yet" again');

    assert.deepEqual(pageErrors, [], 'no script errors on the pages');

    // The removed passkey no longer signs in.
    await auth.presence(false);
    await signOut(page);
    await conditionalRequestStarted(page);
    await auth.presence(true);
    const refused = page.waitForSelector('#passkey-error:not([hidden])', { timeout: 15_000 });
    await page.click('#passkey-signin');
    await refused;
    assert.equal(pathOf(page), '/login', 'a removed passkey does not sign in');
    const refusal = failures.find((f) => f.includes('/login/passkey '));
    assert.ok(refusal, `POST /login/passkey was refused: ${JSON.stringify(failures)}`);
    t.diagnostic(`removed passkey: ${refusal}`);
  });
});

test('passkey as the second factor after a password', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const { url } = server;
    await createUser(server, ALICE);
    const ctx = await newContext();
    const page = await ctx.newPage();
    const failures = watchFailures(page);
    await signIn(page, url, ALICE.username, ALICE.password);
    assert.equal(pathOf(page), '/account');
    const auth = await virtualAuthenticator(page);
    await addPasskey(page, auth, 'Phone', failures);

    // Keep the login page's autofill request from using the passkey: this user signs
    // in with the password, then uses the passkey as the second factor.
    await auth.presence(false);
    await signOut(page);
    await signInToSecondFactor(page, url, ALICE);
    assert.equal(await page.locator('#totp-form').count(), 0, 'no TOTP form for a user without an authenticator app');
    assert.equal(await page.locator('#recovery').count(), 0, 'no recovery codes yet');
    assert.equal(await page.locator('#mfa-none').count(), 0, 'the user has a second factor');
    await auth.presence(true);
    await passkeyCeremony(page, '#passkey-second-factor', atAccount, failures);
    assert.equal((await page.textContent('#account-username'))?.trim(), ALICE.username, 'signed in');
    const cookies = await ctx.cookies(url);
    assert.ok(cookies.some((c) => c.name === 'tessera_session'), 'a session cookie');
    assert.ok(!cookies.some((c) => c.name === 'tessera_mfa'), 'the pending sign-in cookie is cleared');
    assert.match((await page.locator('#passkeys li[data-passkey]').first().textContent()) ?? '', /last used/,
      'the passkey shows when it was last used');
  });
});

test('TOTP: enrol with otplib codes, sign in with the next code, replay refused, recovery codes once each', async (t) => {
  await scenario(t, {}, async ({ server, newContext }) => {
    const { url } = server;
    await createUser(server, ALICE);
    const page = await (await newContext()).newPage();
    await signIn(page, url, ALICE.username, ALICE.password);
    assert.equal(pathOf(page), '/account');
    const step = currentStep();
    const { secret, codes } = await enrolTotp(page, step);
    assert.equal(await page.locator('#recovery-regenerate').count(), 1, 'recovery codes can be regenerated');
    assert.equal(await page.locator('#totp-remove').count(), 1, 'the app can be turned off');

    // The enrolment used this step: sign in with the next one.
    const next = totpCode(secret, step + 1);
    await signOut(page);
    await signInToSecondFactor(page, url, ALICE);
    assert.equal(await page.getAttribute('#code', 'autocomplete'), 'one-time-code');
    assert.equal(await page.locator('#recovery').count(), 1, 'the recovery-code option is offered');
    assert.equal(await page.locator('#passkey-second-factor').count(), 0, 'no passkey option without passkeys');
    const ok = await submitSecondFactor(page, 'totp', next);
    assert.equal(ok, 303, 'a right code answers 303');
    assert.equal(pathOf(page), '/account', `signed in with password + TOTP (at ${page.url()})`);

    // The same code again (same step) is refused.
    await signOut(page);
    await signInToSecondFactor(page, url, ALICE);
    await assertRefused(page, await submitSecondFactor(page, 'totp', next), 'a reused TOTP code');

    // A recovery code works on that same page.
    assert.equal(await submitSecondFactor(page, 'recovery', codes[0]), 303, 'a recovery code answers 303');
    assert.equal(pathOf(page), '/account', `signed in with a recovery code (at ${page.url()})`);
    assert.equal(await recoveryLeft(page), 9, '9 recovery codes left');

    // Once only; another one works.
    await signOut(page);
    await signInToSecondFactor(page, url, ALICE);
    await assertRefused(page, await submitSecondFactor(page, 'recovery', codes[0]), 'a used recovery code');
    assert.equal(await submitSecondFactor(page, 'recovery', codes[1].toUpperCase()), 303, 'another recovery code (typed in capitals)');
    assert.equal(pathOf(page), '/account');
    assert.equal(await recoveryLeft(page), 8, '8 recovery codes left');
  });
});

test('OAuth client with --require-mfa: password + TOTP gives amr mfa/otp and the PAPE acr; a user without a second factor sets one up and continues', async (t) => {
  await mfaScenario(t, {}, async ({ server, newContext, cb }) => {
    const { url } = server;
    await createUser(server, ALICE);
    await createUser(server, BOB);
    const rp = await rpFor(server, cb, { name: 'Strict RP', requireMfa: true });

    // Alice turns on the authenticator app (on another device).
    const setup = await (await newContext()).newPage();
    await signIn(setup, url, ALICE.username, ALICE.password);
    const step = currentStep();
    const { secret } = await enrolTotp(setup, step);

    const page = await (await newContext()).newPage();
    const flow = await startAuthorization(rp, page);
    assert.equal(pathOf(page), '/login', `not signed in: the login page (at ${page.url()})`);
    await submitPassword(page, ALICE);
    assert.equal(pathOf(page), '/login/mfa', `after the password: the second-factor page (at ${page.url()})`);
    await page.fill('#code', totpCode(secret, step + 1));
    await Promise.all([page.waitForURL(atCallback(cb), { timeout: 15_000 }), page.click('#totp-form button[type=submit]')]);
    flow.stop();
    const claims = await redeem(rp, page, flow.checks);
    assertAmr(claims, { has: ['pwd', 'otp', 'mfa'] }, 'password + TOTP');
    assert.equal(claims.acr, ACR_MFA, 'acr is the PAPE multi-factor URI');
    const toClient = flow.navigations.filter((n) => n.location?.startsWith(rp.redirectUri));
    assert.equal(toClient.length, 1, `one redirect to the client: ${JSON.stringify(flow.navigations)}`);

    // Bob has no second factor: he is told to set one up, and the client gets nothing.
    const bobPage = await (await newContext()).newPage();
    const bobFlow = await startAuthorization(rp, bobPage);
    assert.equal(pathOf(bobPage), '/login');
    await submitPassword(bobPage, BOB);
    bobFlow.stop();
    assert.equal(pathOf(bobPage), '/login/mfa', `Bob is sent to the second-factor page (at ${bobPage.url()})`);
    assert.equal(new URL(bobPage.url()).searchParams.get('level'), 'multi_factor', `the page is a step-up to multi_factor: ${bobPage.url()}`);
    assert.ok(await bobPage.locator('#mfa-none').isVisible(), '#mfa-none tells Bob to set up a second factor');
    assert.equal(await bobPage.locator('#totp-form').count(), 0, 'no TOTP form');
    assert.equal(await bobPage.locator('#recovery').count(), 0, 'no recovery-code form');
    assert.equal(await bobPage.locator('#passkey-second-factor').count(), 0, 'no passkey button');
    assert.ok(!bobPage.url().startsWith(cb.base), 'Bob stays at the provider');
    assert.ok(!cb.hits.some((h) => h.url.searchParams.get('state') === bobFlow.checks.state), 'the client got no response for Bob');

    // Bob follows the link, sets up an authenticator app, and is brought back to finish.
    await clickAndWait(bobPage, bobPage.locator('#mfa-setup-link'));
    assert.equal(pathOf(bobPage), '/account', `the account page (at ${bobPage.url()})`);
    assert.ok(await bobPage.locator('#continue-notice').isVisible(), 'the account page says why Bob is here');
    const bobStep = currentStep();
    await clickAndWait(bobPage, bobPage.locator('#totp-setup'));
    const bobSecret = ((await bobPage.textContent('#totp-secret')) ?? '').replace(/\s+/g, '');
    await bobPage.fill('#code', totpCode(bobSecret, bobStep));
    await clickAndWait(bobPage, bobPage.locator('form[action="/account/totp/confirm"] button[type=submit]'));
    assert.equal(await bobPage.locator('#recovery-codes li').count(), 10, 'Bob is shown his recovery codes');
    const continueLink = bobPage.locator('#recovery-done');
    assert.match((await continueLink.getAttribute('href')) ?? '', /^\/oauth2\/authorize\?/, 'the codes page continues to the authorization request');
    // Back at the authorization endpoint, the session is stepped up with the new code.
    await clickAndWait(bobPage, continueLink);
    assert.equal(pathOf(bobPage), '/login/mfa', `the second factor is asked for (at ${bobPage.url()})`);
    assert.equal(await bobPage.locator('input[type=password]').count(), 0, 'no password again');
    const bobBack = startCallbackWatch(bobPage, cb);
    await bobPage.fill('#code', totpCode(bobSecret, bobStep + 1));
    await bobPage.click('#totp-form button[type=submit]');
    await bobBack;
    const bobClaims = await redeem(rp, bobPage, bobFlow.checks);
    assertAmr(bobClaims, { has: ['pwd', 'otp', 'mfa'] }, 'Bob after setting up TOTP');
    assert.equal(bobClaims.acr, ACR_MFA, 'Bob gets the PAPE acr');
  });
});

function startCallbackWatch(page, cb) {
  return page.waitForURL(atCallback(cb), { timeout: 15_000 });
}

test('step-up: acr_values on a password-only session asks only for the second factor; max_age=0 signs in again; prompt=none is interaction_required', async (t) => {
  await mfaScenario(t, {}, async ({ server, newContext, cb }) => {
    const { url } = server;
    await createUser(server, ALICE);
    const rp = await rpFor(server, cb);
    const page = await (await newContext()).newPage();
    await signIn(page, url, ALICE.username, ALICE.password);
    assert.equal(pathOf(page), '/account');

    // A password-only sign-in.
    const plain = await startAuthorization(rp, page);
    plain.stop();
    const first = await redeem(rp, page, plain.checks);
    assert.deepEqual(first.amr, ['pwd'], 'amr of a password sign-in');
    assert.equal(first.acr, ACR_SINGLE, 'acr of a password sign-in');

    // Turn on TOTP: the session stays password-only. Three codes are used without
    // waiting: the previous step's (enrolment), the current one (step-up), the next one
    // (max_age=0).
    await page.goto(`${url}/account`);
    await awayFromStepEnd();
    const base = currentStep();
    const { secret } = await enrolTotp(page, base - 1);

    // prompt=none cannot step up.
    const silent = await startAuthorization(rp, page, { acr_values: ACR_MFA, prompt: 'none' });
    silent.stop();
    const err = new URL(page.url());
    assert.equal(`${err.origin}${err.pathname}`, rp.redirectUri, `prompt=none answers at the redirect URI: ${err}`);
    assert.equal(err.searchParams.get('error'), 'interaction_required', `error=interaction_required: ${err}`);
    assert.equal(err.searchParams.get('state'), silent.checks.state, 'state is echoed');
    assert.equal(err.searchParams.get('iss'), url, 'iss is sent with the error');
    assert.equal(err.searchParams.get('code'), null, 'no code');

    // acr_values=multi-factor: the second-factor page, without a password field.
    const up = await startAuthorization(rp, page, { acr_values: ACR_MFA });
    assert.equal(pathOf(page), '/login/mfa', `step-up page (at ${page.url()})`);
    const here = new URL(page.url());
    assert.equal(here.searchParams.get('level'), 'multi_factor', `level=multi_factor: ${here}`);
    assert.ok((here.searchParams.get('return_to') ?? '').startsWith('/oauth2/authorize?'), `returns to the authorization request: ${here}`);
    assert.equal(up.navigations[0]?.status, 303, `the authorization endpoint redirects: ${JSON.stringify(up.navigations)}`);
    assert.ok(up.navigations[0]?.location?.startsWith('/login/mfa?level=multi_factor') || up.navigations[0]?.location?.startsWith(`${url}/login/mfa?level=multi_factor`),
      `…to /login/mfa?level=multi_factor: ${up.navigations[0]?.location}`);
    assert.equal(await page.locator('input[type=password]').count(), 0, 'no password field');
    assert.equal(await page.locator('#username').count(), 0, 'no username field');
    assert.ok(await page.locator('#totp-form').isVisible(), 'the TOTP form');
    assert.equal(await page.locator('#recovery-form').count(), 1, 'the recovery-code form');
    assert.equal((await page.textContent('#mfa-username'))?.trim(), ALICE.username);
    await page.fill('#code', totpCode(secret, base));
    await Promise.all([page.waitForURL(atCallback(cb), { timeout: 15_000 }), page.click('#totp-form button[type=submit]')]);
    const steppedUpAt = Date.now();
    up.stop();
    const stepped = await redeem(rp, page, up.checks);
    assertAmr(stepped, { has: ['pwd', 'otp', 'mfa'] }, 'after step-up');
    assert.equal(stepped.acr, ACR_MFA, 'acr is the PAPE multi-factor URI');
    assert.equal(stepped.sid, first.sid, 'the session was upgraded in place (same sid)');
    assert.equal(stepped.sub, first.sub);

    // Now the session reaches the level: prompt=none succeeds.
    const quiet = await startAuthorization(rp, page, { acr_values: ACR_MFA, prompt: 'none' });
    quiet.stop();
    const quietClaims = await redeem(rp, page, quiet.checks);
    assert.equal(quietClaims.acr, ACR_MFA, 'prompt=none after the step-up: multi-factor');

    // max_age=0: sign in again (password, then TOTP). OIDC Core 3.1.2.1: "max_age=0 is
    // equivalent to prompt=login", however recent the last authentication.
    const before = Math.floor(Date.now() / 1000);
    const sinceStepUp = Date.now() - steppedUpAt;
    const again = await startAuthorization(rp, page, { max_age: '0' });
    assert.equal(pathOf(page), '/login',
      `max_age=0 shows the login page (at ${page.url()}; the step-up was ${sinceStepUp} ms before, auth_time ${stepped.auth_time})`);
    await submitPassword(page, ALICE);
    assert.equal(pathOf(page), '/login/mfa', `then the second factor (at ${page.url()})`);
    await page.fill('#code', totpCode(secret, base + 1));
    await Promise.all([page.waitForURL(atCallback(cb), { timeout: 15_000 }), page.click('#totp-form button[type=submit]')]);
    again.stop();
    const fresh = await redeem(rp, page, again.checks, { maxAge: 0 });
    assert.ok(fresh.auth_time >= before, `auth_time ${fresh.auth_time} is fresh (request at ${before})`);
    assert.ok(fresh.auth_time >= first.auth_time, 'auth_time moved on');
    assertAmr(fresh, { has: ['pwd', 'otp', 'mfa'] }, 'after max_age=0');
    assert.equal(fresh.acr, ACR_MFA, 'acr is multi-factor');
    assert.equal(fresh.sid, first.sid, 'signing in again upgrades the same session');
  });
});

test('re-authentication: a stale sign-in is sent to confirm it is you before changing factors', async (t) => {
  const WINDOW_S = 3;
  await scenario(t, { env: { TESSERA_SESSION__REAUTH_WINDOW: `${WINDOW_S}s` } }, async ({ server, newContext }) => {
    const { url } = server;
    await createUser(server, ALICE);
    const page = await (await newContext()).newPage();
    await signIn(page, url, ALICE.username, ALICE.password);
    const signedInAt = Date.now();
    assert.equal(pathOf(page), '/account');
    const rows = page.locator('table.sessions tbody tr');
    assert.equal(await rows.count(), 1, 'one session');
    const handle = await rows.first().getAttribute('data-session');

    // The only sleep in the suite: let the re-authentication window pass.
    await page.waitForTimeout(Math.max(0, (WINDOW_S + 1) * 1000 - (Date.now() - signedInAt)));
    await page.reload();
    assert.equal(await page.locator('#reauth-hint').count(), 1, 'the account page says to confirm it is you first');

    const navs = [];
    page.on('response', (r) => {
      if (r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()) {
        navs.push({ url: r.url(), status: r.status(), location: r.headers().location });
      }
    });
    await clickAndWait(page, page.locator('#totp-setup'));
    assert.equal(pathOf(page), '/login', `a stale session is sent to the login page (at ${page.url()})`);
    const there = new URL(page.url());
    assert.equal(there.searchParams.get('reauth'), '1');
    assert.equal(there.searchParams.get('return_to'), '/account');
    assert.equal(there.searchParams.get('login_hint'), ALICE.username);
    assert.equal(navs[0]?.status, 303, `POST /account/totp answers 303: ${JSON.stringify(navs)}`);
    assert.ok(await page.locator('#reauth-notice').isVisible(), '#reauth-notice is shown');
    assert.equal(await page.inputValue('#username'), ALICE.username, 'the username is filled in');

    await page.fill('#password', ALICE.password);
    await clickAndWait(page, page.locator('form[action="/login"] button[type=submit]'));
    assert.equal(pathOf(page), '/account', `back on the account page (at ${page.url()})`);
    assert.equal(await page.locator('#reauth-hint').count(), 0, 'no re-authentication hint right after signing in');
    await clickAndWait(page, page.locator('#totp-setup'));
    assert.equal(pathOf(page), '/account/totp', `the setup page now (at ${page.url()})`);
    assert.ok(await page.locator('#totp-secret').isVisible(), 'the key is shown');

    await page.goto(`${url}/account`);
    assert.equal(await rows.count(), 1, 're-authentication adds no session');
    assert.equal(await rows.first().getAttribute('data-session'), handle, 'the same session, upgraded in place');
    assert.equal(await page.locator('table.sessions tbody tr.current').count(), 1);
  });
});

test('discovery lists acr_values_supported', async (t) => {
  await withServer(t, async (server) => {
    const md = await (await fetch(`${server.url}/.well-known/openid-configuration`)).json();
    assert.ok(Array.isArray(md.acr_values_supported), `acr_values_supported: ${JSON.stringify(md.acr_values_supported)}`);
    for (const v of [ACR_SINGLE, ACR_MFA, ACR_PHR]) {
      assert.ok(md.acr_values_supported.includes(v), `acr_values_supported has ${v}: ${JSON.stringify(md.acr_values_supported)}`);
    }
    const config = await discover(server.url, 'nobody', undefined, client.None());
    assert.deepEqual(config.serverMetadata().acr_values_supported, md.acr_values_supported, 'openid-client reads them');
  });
});
