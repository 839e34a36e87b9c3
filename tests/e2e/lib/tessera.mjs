// Harness for Tessera browser end-to-end tests.
//
// Starts `tessera serve` on a free loopback port with a fresh data directory,
// runs the `tessera` CLI against the same data directory, and launches the
// system Chromium through playwright-core.

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
/** tests/e2e */
export const E2E_DIR = path.resolve(here, '..');
/** The repository root: two levels above tests/e2e. */
export const REPO_DIR = path.resolve(E2E_DIR, '..', '..');
/** Where failure screenshots and logs go (git-ignored). */
export const RESULTS_DIR = path.join(E2E_DIR, 'test-results');

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const CLI_TIMEOUT_MS = 60_000;

/** The tessera binary: $TESSERA_BIN, else <repo>/target/debug/tessera. */
/** The environment for a tessera process: ours, less the harness's own TESSERA_BIN
 * (tessera refuses unknown TESSERA_* variables). */
function baseEnv() {
  const { TESSERA_BIN: _bin, ...rest } = process.env;
  return rest;
}

export function tesseraBin() {
  return process.env.TESSERA_BIN || path.join(REPO_DIR, 'target', 'debug', 'tessera');
}

/** Chromium: $CHROMIUM_BIN, else Debian's /usr/bin/chromium. */
export function chromiumBin() {
  return process.env.CHROMIUM_BIN || '/usr/bin/chromium';
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

/** Extracts the URL printed after "listening on " in a log line, or null. */
export function parseListenLine(line) {
  const clean = line.replace(ANSI, '');
  const m = /listening on\s+(\S+)/i.exec(clean);
  if (!m) return null;
  const token = m[1].replace(/^[<("'`[]+/, '').replace(/[)>\]"'`.,;:!]+$/, '');
  if (!/^https?:\/\//i.test(token)) return null;
  return token.replace(/\/+$/, '');
}

function runFile(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, opts, (err, stdout, stderr) => {
      if (err) {
        err.stdout = stdout;
        err.stderr = stderr;
        reject(err);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/** Writes a self-signed P-256 certificate for localhost into `dir`. */
export async function makeSelfSignedCert(dir) {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  await runFile('openssl', [
    'req', '-x509',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-days', '2',
    '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', keyFile, '-out', certFile,
  ], { timeout: 30_000 });
  return { certFile, keyFile };
}

/**
 * Runs the tessera CLI with `args`. `dataDir` (or `env.TESSERA_DATA_DIR`) selects
 * the database. Resolves to the JSON object printed on stdout; rejects with an
 * Error carrying stderr (and `.code`, `.stdout`, `.stderr`) on a non-zero exit.
 */
export function cli(args, { env = {}, stdin, dataDir } = {}) {
  const bin = tesseraBin();
  const childEnv = { ...baseEnv(), ...env };
  if (dataDir) childEnv.TESSERA_DATA_DIR = dataDir;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${bin} ${args.join(' ')}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const what = `tessera ${args.join(' ')}`;
      if (code !== 0) {
        const e = new Error(`${what} exited with ${signal ?? code}:\n${stderr.trim() || stdout.trim()}`);
        Object.assign(e, { code, signal, stdout, stderr });
        reject(e);
        return;
      }
      const parsed = parseJsonOutput(stdout);
      if (parsed === undefined) {
        const e = new Error(`${what} printed no JSON on stdout:\n${stdout}\n--- stderr ---\n${stderr}`);
        Object.assign(e, { code, stdout, stderr });
        reject(e);
        return;
      }
      resolve(parsed);
    });
    child.stdin.on('error', () => { /* the CLI may not read stdin at all */ });
    if (stdin !== undefined) child.stdin.write(stdin);
    child.stdin.end();
  });
}

/**
 * The whole of stdout as JSON; else the last JSON object in it (a one-line
 * object, or a pretty-printed one running to the end), skipping log lines.
 */
function parseJsonOutput(stdout) {
  const text = stdout.replace(ANSI, '').trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch { /* fall through */ }
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i].trimStart().startsWith('{')) continue;
    for (const candidate of [lines[i], lines.slice(i).join('\n')]) {
      try {
        return JSON.parse(candidate);
      } catch { /* keep looking */ }
    }
  }
  return undefined;
}

/**
 * Starts `tessera serve` with a fresh data directory on 127.0.0.1:0.
 * Resolves to { url, dataDir, proc, env, output(), cli(args, opts), stop() }.
 */
export async function startServer({ env = {}, tls = false, args = ['serve'] } = {}) {
  const bin = tesseraBin();
  if (!existsSync(bin)) {
    throw new Error(`tessera binary not found at ${bin} (build it with \`cargo build\` or set TESSERA_BIN)`);
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), 'tessera-e2e-'));
  const serverEnv = {
    TESSERA_LISTEN: '127.0.0.1:0',
    TESSERA_DATA_DIR: dataDir,
  };
  if (tls) {
    const { certFile, keyFile } = await makeSelfSignedCert(dataDir);
    serverEnv.TESSERA_TLS__CERT_FILE = certFile;
    serverEnv.TESSERA_TLS__KEY_FILE = keyFile;
  }
  Object.assign(serverEnv, env);

  const proc = spawn(bin, args, {
    env: { ...baseEnv(), ...serverEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  const url = await new Promise((resolve, reject) => {
    let found = false;
    let pending = { out: '', err: '' };
    const timer = setTimeout(() => {
      fail(new Error(`tessera serve did not print "listening on <url>" within ${STARTUP_TIMEOUT_MS / 1000} s`));
    }, STARTUP_TIMEOUT_MS);
    function fail(e) {
      if (found) return;
      found = true;
      clearTimeout(timer);
      e.message += `\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
      reject(e);
    }
    function scan(which, chunk) {
      if (found) return;
      pending[which] += chunk;
      const lines = pending[which].split('\n');
      pending[which] = lines.pop();
      for (const line of lines) {
        const u = parseListenLine(line);
        if (u) {
          found = true;
          clearTimeout(timer);
          resolve(u);
          return;
        }
      }
    }
    proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; scan('out', d); });
    // The brief says the line is on stdout; accept it on stderr too, in case
    // it comes from a log subscriber writing there.
    proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; scan('err', d); });
    proc.on('error', (e) => fail(new Error(`could not start ${bin}: ${e.message}`)));
    proc.on('exit', (code, signal) => fail(new Error(`tessera serve exited early with ${signal ?? code}`)));
  }).catch(async (e) => {
    if (!exited) proc.kill('SIGKILL');
    await exitPromise;
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  });

  let stopped = false;
  const server = {
    url,
    dataDir,
    proc,
    env: serverEnv,
    /** Everything the server printed so far. */
    output() {
      return `--- tessera serve stdout ---\n${stdout}\n--- tessera serve stderr ---\n${stderr}`;
    },
    /** The CLI against this server's data directory and environment. */
    cli(args, opts = {}) {
      return cli(args, { ...opts, env: { ...serverEnv, ...(opts.env ?? {}) } });
    },
    /** SIGTERM, SIGKILL after 5 s; removes the data directory. */
    async stop() {
      if (stopped) return exited;
      stopped = true;
      if (!exited) {
        proc.kill('SIGTERM');
        const killer = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, STOP_GRACE_MS);
        await exitPromise;
        clearTimeout(killer);
      }
      await rm(dataDir, { recursive: true, force: true });
      return exited;
    },
  };
  return server;
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** A playwright-core Browser on the system Chromium. */
export function launchBrowser() {
  return chromium.launch({ executablePath: chromiumBin(), args: CHROMIUM_ARGS });
}

/**
 * Runs `fn({ server, browser, newContext })` with a fresh server and browser,
 * and stops both afterwards. On failure, prints the server's output and saves
 * a screenshot of every open page under tests/e2e/test-results/.
 * `newContext(opts)` adds ignoreHTTPSErrors for TLS servers.
 */
export async function scenario(t, { env, tls } = {}, fn) {
  const server = await startServer({ env, tls });
  let browser;
  try {
    browser = await launchBrowser();
    const newContext = (opts = {}) => browser.newContext({ ignoreHTTPSErrors: !!tls, ...opts });
    await fn({ server, browser, newContext });
  } catch (e) {
    await saveFailureArtifacts(t, server, browser).catch((err) => {
      console.error(`could not save failure artifacts: ${err.message}`);
    });
    throw e;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await server.stop();
  }
}

async function saveFailureArtifacts(t, server, browser) {
  const slug = (t.name || 'test').replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 80);
  const dir = path.join(RESULTS_DIR, slug);
  await mkdir(dir, { recursive: true });
  const out = server.output();
  console.error(`\n[${t.name}] failed; server output follows (also in ${dir}/server.log)\n${out}\n`);
  await writeFile(path.join(dir, 'server.log'), out);
  if (!browser) return;
  let n = 0;
  for (const ctx of browser.contexts()) {
    for (const page of ctx.pages()) {
      n += 1;
      const file = path.join(dir, `page-${n}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      await writeFile(path.join(dir, `page-${n}.url.txt`), page.url()).catch(() => {});
    }
  }
}

/**
 * Clicks `locator` (which submits a form or follows a link) and waits until
 * the resulting top-level document has committed and loaded.
 */
export async function clickAndWait(page, locator) {
  const nav = page.waitForEvent('framenavigated', {
    predicate: (f) => f === page.mainFrame(),
    timeout: 15_000,
  });
  await locator.click();
  await nav;
  await page.waitForLoadState('load');
}

/** The `tessera_session` cookie visible to `url` in `context`, or undefined. */
export async function sessionCookie(context, url) {
  const cookies = await context.cookies(url);
  return cookies.find((c) => c.name === SESSION_COOKIE);
}

export const SESSION_COOKIE = 'tessera_session';

/**
 * Signs in through the login form. Leaves the page wherever the server sent
 * it; resolves to the response of the POST /login.
 */
export async function signIn(page, baseUrl, username, password) {
  await page.goto(`${baseUrl}/login`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  const post = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login',
    { timeout: 15_000 },
  );
  await clickAndWait(page, page.locator('button[type=submit]'));
  return post;
}

/** The path of the page's current URL. */
export function pathOf(page) {
  return new URL(page.url()).pathname;
}
