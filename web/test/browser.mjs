// The browser client end to end (issue 11): headless Debian Chromium, driven
// by playwright-core, against the real page of a real `scram-dh serve --http`
// (SQLite in a temporary directory):
//
//  1. register, log in, whoami shows the user, a signed request, logout, then
//     a request the server refuses (`unknown_session`); RFC 7804 and a wrong
//     password too;
//  2. a user registered in the browser logs in with the CLI, and a user the
//     CLI registered logs in in the browser;
//  3. the fallback: WebCrypto's X25519 and ChaCha20-Poly1305 hidden, the page
//     still registers and logs in on @noble (and with ?webcrypto=0, on @noble
//     for everything);
//  4. every request the browser sent, in every encoding checked, is free of
//     the canary passwords;
//  5. a screenshot of the page after login, in $SCRAM_DH_SCREENSHOT_DIR
//     (default target/web-test/).
//
//   SCRAM_DH_BIN=target/debug/scram-dh node web/test/browser.mjs
//
// It exits non-zero at the first failure, naming the step.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, launchChromium, startServer } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.SCRAM_DH_BIN ?? join(root, 'target', 'debug', 'scram-dh');
const shots = process.env.SCRAM_DH_SCREENSHOT_DIR ?? join(root, 'target', 'web-test');
const STEP_MS = 30_000;

let failures = 0;
let steps = 0;
function ok(name) {
  steps += 1;
  console.log(`ok ${steps} - ${name}`);
}
function fail(name, why) {
  failures += 1;
  steps += 1;
  console.log(`not ok ${steps} - ${name}\n  # ${String(why).split('\n').join('\n  # ')}`);
}
/** @param {boolean} cond @param {string} name @param {string} [why] */
function check(cond, name, why = '') {
  if (cond) ok(name);
  else fail(name, why);
  return cond;
}

for (const [what, path] of [
  ['the scram-dh binary (SCRAM_DH_BIN)', bin],
  ['Chromium (scripts/peers.sh installs Debian chromium)', CHROMIUM],
]) {
  if (!existsSync(path)) {
    console.error(`browser test: ${what} is missing at ${path}`);
    process.exit(1);
  }
}

const work = mkdtempSync(join(tmpdir(), 'scram-dh-web-'));
mkdirSync(shots, { recursive: true });

// ------------------------------------------------------------------ server

/** Runs the CLI with `input` on stdin; answers { status, stdout, stderr }. */
function cli(args, input) {
  const r = spawnSync(bin, args, { input, encoding: 'utf8', timeout: 60_000, env: { ...process.env, RUST_LOG: 'warn' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// ------------------------------------------------------------------ the canary

const canaries = [];
/** A password nobody else types, remembered for the network check. */
function canary(tag) {
  const pw = `canary-${tag}-${randomBytes(6).toString('hex')}-Pä55`;
  canaries.push(pw);
  return pw;
}

/** Every encoding of `secret` a request could carry it in. */
function encodings(secret) {
  const raw = Buffer.from(secret, 'utf8');
  const out = new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1), raw.toString('hex'), raw.toString('hex').toUpperCase()]);
  out.add(Buffer.from(secret, 'utf16le').toString('latin1'));
  // base64 and base64url of the secret at each of the three alignments, the
  // partial characters at either end dropped.
  for (let shift = 0; shift < 3; shift++) {
    const padded = Buffer.concat([Buffer.alloc(shift), raw]);
    for (const alphabet of ['base64', 'base64url']) {
      let s = padded.toString(alphabet).replace(/=+$/, '');
      const skip = Math.ceil((shift * 8) / 6);
      s = s.slice(skip, s.length - 2);
      if (s.length >= 8) out.add(s);
    }
  }
  return [...out];
}

/** The captured requests, each as text in which to look for a canary. */
const captured = [];
function capture(page, label) {
  page.on('request', (req) => {
    const body = req.postDataBuffer();
    const parts = [req.method(), req.url(), JSON.stringify(req.headers()), body ? body.toString('latin1') : ''];
    // Base64 fields of JSON bodies and SCRAM `data=` headers, decoded too.
    const texts = parts.join('\n');
    const decoded = [];
    for (const m of texts.matchAll(/[A-Za-z0-9+/_-]{12,}={0,2}/g)) {
      decoded.push(Buffer.from(m[0], 'base64').toString('latin1'));
    }
    captured.push({ label, url: req.url(), text: `${texts}\n${decoded.join('\n')}` });
  });
}

// ------------------------------------------------------------------ page helpers

/** Waits until #status is no longer busy; answers its text. */
async function settled(page) {
  await page.waitForFunction(() => {
    const s = document.getElementById('status');
    return s && s.dataset.kind && s.dataset.kind !== 'busy';
  }, null, { timeout: STEP_MS });
  return (await page.textContent('#status')) ?? '';
}

/** Milliseconds each timed action took in the page, for BENCHMARKS.md. */
const timings = [];

/** Clicks `selector` and answers the settled #status; `timed` names it in the timings. */
async function act(page, selector, timed = '') {
  await page.evaluate(() => {
    document.getElementById('status').dataset.kind = 'busy';
  });
  await page.click(selector);
  const status = await settled(page);
  // The page's own measure of the action (#status data-ms), not the driver's round trips.
  if (timed) timings.push(`${timed} ${await page.getAttribute('#status', 'data-ms')} ms`);
  return status;
}

async function fill(page, username, password) {
  await page.fill('#username', username);
  await page.fill('#password', password);
}

async function open(page, url) {
  await page.goto(url, { waitUntil: 'load', timeout: STEP_MS });
  return settled(page);
}

// ------------------------------------------------------------------ the run

const server = await startServer(bin, work, ['--registrations-per-sec', '50', '--registration-burst', '50']);
console.log(`# server ${server.url}, host key ${server.fingerprint}; chromium ${CHROMIUM}`);
const context = await launchChromium(join(work, 'chromium-profile'), { viewport: { width: 900, height: 1100 } });

try {
  const page = await context.newPage();
  capture(page, 'webcrypto');
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  // Chromium logs each 4xx as "Failed to load resource"; the refusals above are expected.
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && consoleErrors.push(m.text()));

  let status = await open(page, `${server.url}/v1/ui/`);
  check(status === 'ready: ok', 'the page loads at /v1/ui/', status);
  const engines = (await page.textContent('#engines')) ?? '';
  check(/x25519: webcrypto/.test(engines) && /chacha20poly1305: webcrypto/.test(engines) && /ed25519: webcrypto/.test(engines),
    'Chromium serves X25519, Ed25519 and ChaCha20-Poly1305 from WebCrypto', engines);
  check((await page.textContent('#server-fingerprint')) === server.fingerprint, "the page shows the server's host key fingerprint");

  const alice = 'browser-alice';
  const alicePw = canary('alice');
  await fill(page, alice, alicePw);
  status = await act(page, '#register', 'register (WebCrypto)');
  check(status === `register ${alice}: ok`, 'register in the browser', status);
  check((await page.textContent('#pinned-fingerprint')) === server.fingerprint, 'the host key is pinned in the page storage (trust on first use)');
  const pins = await page.evaluate(() => localStorage.getItem('scram-dh.known-hosts'));
  check(typeof pins === 'string' && pins.includes(server.fingerprint), 'the pin is in localStorage', String(pins));

  status = await act(page, '#register');
  check(status.includes('error username_taken'), 'registering the same name again is username_taken', status);

  await fill(page, alice, 'not-the-password');
  status = await act(page, '#login');
  check(status.includes('error authentication_failed'), 'a wrong password is authentication_failed', status);

  await fill(page, alice, alicePw);
  status = await act(page, '#login', 'login (WebCrypto)');
  check(status === `login ${alice}: ok`, 'log in', status);
  check((await page.textContent('#user')) === alice, 'the page shows who is signed in');
  check((await page.inputValue('#password')) === '', 'the password field is cleared after login');

  status = await act(page, '#whoami');
  check(status === `whoami ${alice}: ok`, 'whoami shows the user', status);

  status = await act(page, '#request', 'signed request (WebCrypto)');
  const out = (await page.textContent('#output')) ?? '';
  check(status === 'request: ok' && out.includes('"pong":true') && out.includes(`"user":"${alice}"`), 'a signed request (GET /v1/ping), its response MAC verified', `${status} / ${out}`);

  const shot = join(shots, 'after-login.png');
  await page.screenshot({ path: shot, fullPage: true });
  check(existsSync(shot), `a screenshot after login: ${shot}`);

  // Signed against unsigned GET /v1/ping, 100 each in turn, from the page's own
  // module: what signing and MAC checking cost a page (timings, not asserted).
  const perRequest = await page.evaluate(async ([name, pw]) => {
    const { ScramDhClient } = await import('/v1/ui/scram-dh.js');
    const session = await new ScramDhClient().login(name, pw);
    const out = { signed: 0, unsigned: 0 };
    for (let i = 0; i < 100; i++) {
      let t = performance.now();
      await (await session.fetch('/v1/ping')).text();
      out.signed += performance.now() - t;
      t = performance.now();
      await (await fetch('/v1/ping', { cache: 'no-store' })).text();
      out.unsigned += performance.now() - t;
    }
    await session.logout();
    return { signed: out.signed / 100, unsigned: out.unsigned / 100 };
  }, [alice, alicePw]);
  timings.push(`signed GET /v1/ping (WebCrypto, mean of 100) ${perRequest.signed.toFixed(2)} ms`);
  timings.push(`unsigned GET /v1/ping (mean of 100) ${perRequest.unsigned.toFixed(2)} ms`);

  // The refused request must reach the server: watch the network for it.
  const refused = page.waitForResponse((r) => r.url().endsWith('/v1/whoami') && r.status() === 401, { timeout: STEP_MS });
  status = await act(page, '#logout');
  check(status === 'logout: ok', 'log out', status);
  check((await page.textContent('#user')) === 'nobody', 'nobody is signed in after logout');
  status = await act(page, '#whoami');
  const response = await refused.catch((e) => e);
  check(status.includes('error unknown_session'), 'after logout the server refuses the session (unknown_session)', status);
  check(!(response instanceof Error), 'that refusal came from the server (401 on the network)', String(response));

  await fill(page, alice, alicePw);
  status = await act(page, '#rfc7804');
  check(status === `rfc7804 ${alice}: ok`, 'one request by standard SCRAM over HTTP (RFC 7804)', status);

  // ---------------------------------------------------------------- the CLI, both ways
  const cliDir = join(work, 'cli');
  let r = cli(['login', alice, '--http', server.url, '--password-stdin', '--config-dir', cliDir], `${alicePw}\n`);
  check(r.status === 0, 'the CLI logs in (over HTTP, with the password) as the user the browser registered', r.stderr + r.stdout);
  r = cli(['http', 'GET', '/v1/whoami', '--http', server.url, '--user', alice, '--config-dir', cliDir]);
  check(r.status === 0 && r.stdout.includes(alice), "the CLI's signed whoami names that user", r.stderr + r.stdout);

  const bob = 'cli-bob';
  const bobPw = canary('bob');
  r = cli(['register', bob, '--http', server.url, '--labels', 'rfc', '--password-stdin', '--no-login', '--fingerprint', server.fingerprint, '--config-dir', cliDir], `${bobPw}\n`);
  check(r.status === 0, 'the CLI registers a user (RFC labels)', r.stderr + r.stdout);
  await fill(page, bob, bobPw);
  status = await act(page, '#login');
  check(status === `login ${bob}: ok`, 'the browser logs in as the user the CLI registered', status);
  status = await act(page, '#whoami');
  check(status === `whoami ${bob}: ok`, "whoami in the browser names the CLI's user", status);

  check(consoleErrors.length === 0, 'no script errors on the page', consoleErrors.join('\n'));

  // ---------------------------------------------------------------- the fallback
  const hidden = await context.newPage();
  capture(hidden, 'fallback');
  await hidden.addInitScript(() => {
    // WebCrypto without X25519 and ChaCha20-Poly1305, as in a browser that lacks them.
    const subtle = globalThis.crypto.subtle;
    const gone = (alg) => /^(x25519|chacha20-poly1305)$/i.test(typeof alg === 'string' ? alg : alg?.name ?? '');
    const refuse = () => Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError'));
    for (const [method, at] of [['generateKey', 0], ['importKey', 2], ['encrypt', 0], ['decrypt', 0], ['deriveBits', 0], ['deriveKey', 0], ['exportKey', -1], ['wrapKey', 3], ['unwrapKey', 4]]) {
      const real = subtle[method].bind(subtle);
      subtle[method] = (...args) => {
        const alg = at >= 0 ? args[at] : args[1]?.algorithm;
        return gone(alg) ? refuse() : real(...args);
      };
    }
  });
  status = await open(hidden, `${server.url}/v1/ui/`);
  check(status === 'ready: ok', 'the page loads with X25519 and ChaCha20-Poly1305 hidden', status);
  const fallback = (await hidden.textContent('#engines')) ?? '';
  check(/x25519: noble/.test(fallback) && /chacha20poly1305: noble/.test(fallback) && /ed25519: webcrypto/.test(fallback) && /pbkdf2: webcrypto/.test(fallback),
    'the module falls back to @noble for exactly the hidden primitives', fallback);
  const carol = 'fallback-carol';
  const carolPw = canary('carol');
  await fill(hidden, carol, carolPw);
  status = await act(hidden, '#register', 'register (X25519, ChaCha20 on @noble)');
  check(status === `register ${carol}: ok`, 'register on the fallback path', status);
  status = await act(hidden, '#login', 'login (X25519 on @noble)');
  check(status === `login ${carol}: ok`, 'log in on the fallback path', status);
  status = await act(hidden, '#whoami');
  check(status === `whoami ${carol}: ok`, 'whoami on the fallback path', status);
  await hidden.close();

  const noble = await context.newPage();
  capture(noble, 'noble');
  status = await open(noble, `${server.url}/v1/ui/?webcrypto=0`);
  const all = (await noble.textContent('#engines')) ?? '';
  check(status === 'ready: ok' && !all.includes('webcrypto'), 'with ?webcrypto=0 every primitive is @noble', all);
  const dave = 'noble-dave';
  const davePw = canary('dave');
  await fill(noble, dave, davePw);
  status = await act(noble, '#register', 'register (all @noble)');
  check(status === `register ${dave}: ok`, 'register on @noble alone', status);
  status = await act(noble, '#login', 'login (all @noble)');
  check(status === `login ${dave}: ok`, 'log in on @noble alone', status);
  status = await act(noble, '#request', 'signed request (all @noble)');
  check(status === 'request: ok', 'a signed request on @noble alone', status);
  await noble.close();

  // The page at / (no upstream is configured).
  const rootPage = await context.newPage();
  status = await open(rootPage, `${server.url}/`);
  check(status === 'ready: ok', 'the page is served at / when no upstream is set', status);
  await rootPage.close();

  // ---------------------------------------------------------------- the canary check
  const handshakes = captured.filter((c) => /\/v1\/(registration|auth)\//.test(c.url)).length;
  check(captured.length >= 20 && handshakes >= 10, `requests captured: ${captured.length} (${handshakes} handshake steps)`);
  const leaks = [];
  for (const pw of canaries) {
    const forms = encodings(pw);
    for (const c of captured) {
      for (const f of forms) if (c.text.includes(f)) leaks.push(`${c.label} ${c.url}: ${JSON.stringify(f)}`);
    }
  }
  check(leaks.length === 0, `no request carries a canary password (${canaries.length} canaries, ${encodings(canaries[0]).length} encodings each)`, leaks.join('\n'));
  // And the check itself can fail: a request that does carry one is caught.
  const probe = [`{"x":"${Buffer.from(`..${canaries[0]}`).toString('base64')}"}`];
  check(encodings(canaries[0]).some((f) => probe[0].includes(f)), 'the canary check finds a base64-encoded canary (control)');
  const logText = server.logs.join('\n');
  check(canaries.every((pw) => !logText.includes(pw)), 'no canary in the server log');
} catch (e) {
  fail('the run', e instanceof Error ? e.stack : e);
} finally {
  await context.close().catch(() => {});
  server.child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

for (const t of timings) console.log(`# timing ${t}`);
console.log(`1..${steps}`);
if (failures > 0) {
  console.log(`# ${failures} of ${steps} failed`);
  process.exit(1);
}
console.log(`# all ${steps} passed`);
