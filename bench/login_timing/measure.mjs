// Login timing: interleaved sign-in attempts for an unknown user and for an existing user
// with a wrong password, one at a time over one keep-alive connection; prints each kind's
// median wall time and their relative difference. Exits non-zero on errors (an answer other
// than 401, a missing CSRF token), never on timing.
//
//   node measure.mjs BASE_URL USERNAME [ATTEMPTS] [WARMUP]
//
// SPEC §1.7: unknown user, wrong password and disabled account must take the same time
// (a dummy hash for unknown users), so the two medians should be within noise.

import { performance } from 'node:perf_hooks';

const [base, username, attemptsArg = '60', warmupArg = '6'] = process.argv.slice(2);
if (!base || !username) {
  console.error('usage: node measure.mjs BASE_URL USERNAME [ATTEMPTS] [WARMUP]');
  process.exit(2);
}
const attempts = Number(attemptsArg);
const warmup = Number(warmupArg);

// The CSRF anchor cookie and the login form's token (pre-sign-in tokens are bound to the
// cookie, so one pair serves every attempt).
const page = await fetch(`${base}/login`);
if (page.status !== 200) throw new Error(`GET /login: ${page.status}`);
const anchor = (page.headers.getSetCookie?.() ?? []).map((c) => c.split(';')[0]).find((c) => c.startsWith('tessera_csrf='));
const html = await page.text();
const token = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1];
if (!anchor || !token) throw new Error('no CSRF cookie or token on /login');

async function attempt(login) {
  const body = new URLSearchParams({ csrf_token: token, return_to: '/account', username: login, password: 'not the password, 0123456789' });
  const t0 = performance.now();
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: anchor },
    body,
    redirect: 'manual',
  });
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 401) throw new Error(`POST /login for ${login}: expected 401, got ${res.status}${res.status === 429 ? ' (is throttling disabled?)' : ''}`);
  return ms;
}

const kinds = { unknown: [], wrong_password: [] };
let unknownN = 0;
const next = (i) => (i % 2 === 0 ? ['unknown', `nobody-${unknownN++}-${process.pid}`] : ['wrong_password', username]);
for (let i = 0; i < warmup; i++) await attempt(next(i)[1]);
for (let i = 0; i < attempts; i++) {
  const [kind, login] = next(i);
  kinds[kind].push(await attempt(login));
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
};
const fmt = (x) => x.toFixed(2).padStart(8);
console.log(`${attempts} attempts (+${warmup} warm-up), alternating, one at a time; wall time per request in ms`);
console.log('kind              n    median      p10      p90     mean');
const med = {};
for (const [kind, xs] of Object.entries(kinds)) {
  med[kind] = quantile(xs, 0.5);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`${kind.padEnd(15)} ${String(xs.length).padStart(3)}  ${fmt(med[kind])} ${fmt(quantile(xs, 0.1))} ${fmt(quantile(xs, 0.9))} ${fmt(mean)}`);
}
const diff = (med.wrong_password - med.unknown) / med.unknown;
console.log(`relative difference of medians (wrong_password vs unknown): ${(diff * 100).toFixed(1)} %`);
console.log(JSON.stringify({ attempts, median_ms: med, relative_difference: Number(diff.toFixed(4)) }));
