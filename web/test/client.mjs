// The browser client's refusals (web/dist/scram-dh.js, as the server embeds
// it), in Node.js against a real `scram-dh serve --http`: a fetch between the
// two hands the client each server reply tampered with in one way, and the
// client must refuse it with the right code — and, where it matters, before
// it sends anything that depends on the tampered part. Node's WebCrypto has
// X25519 and Ed25519 but not ChaCha20-Poly1305, so these runs cross both
// engines; every case also runs with `webcrypto: false` (@noble only).
//
//   SCRAM_DH_BIN=target/debug/scram-dh node --test web/test/client.mjs

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ScramDhClient, ScramDhError, saslprep } from '../dist/scram-dh.js';
import { startServer } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.SCRAM_DH_BIN ?? join(root, 'target', 'debug', 'scram-dh');
const work = mkdtempSync(join(tmpdir(), 'scram-dh-client-'));
let server;
let url;
let seq = 0;
const name = (tag) => `${tag}-${process.pid}-${seq++}`;

before(async () => {
  const flags = ['--registrations-per-sec', '200', '--registration-burst', '200', '--dh-per-sec', '500', '--dh-burst', '500'];
  ({ child: server, url } = await startServer(bin, work, flags));
});

after(() => {
  server?.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
});

/**
 * A fetch that forwards to the server and lets `tamper` rewrite the reply of
 * requests whose path ends with `path`: `tamper({ status, headers, json, text })`
 * mutates in place. `sent` lists every path requested.
 */
function tampering(path, tamper) {
  const sent = [];
  const f = async (input, init) => {
    const u = new URL(String(input));
    sent.push(u.pathname);
    const r = await fetch(input, init);
    if (!u.pathname.endsWith(path)) return r;
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    const reply = { status: r.status, headers: new Headers(r.headers), json, text };
    tamper(reply);
    const body = reply.json !== null ? JSON.stringify(reply.json) : reply.text;
    return new Response(body, { status: reply.status, headers: reply.headers });
  };
  return { fetch: f, sent };
}

/** Whether two texts are JSON of the same value. */
function sameJson(a, b) {
  try {
    assert.deepStrictEqual(JSON.parse(a), JSON.parse(b));
    return true;
  } catch {
    return false;
  }
}

/** Flips the first bit of a base64 field. */
function flip(b64) {
  const bytes = Buffer.from(b64, 'base64');
  bytes[0] ^= 1;
  return bytes.toString('base64');
}

/** @param {Promise<unknown>} p @param {string} code */
async function refused(p, code) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof ScramDhError, `not a ScramDhError: ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

for (const webcrypto of [true, false]) {
  describe(webcrypto ? 'WebCrypto where Node has it' : '@noble only', () => {
    const client = (extra = {}) => new ScramDhClient({ baseUrl: url, webcrypto, ...extra });

    test('a clean registration and login work (the control)', async () => {
      const u = name('clean');
      const reg = await client().register(u, 'correct horse');
      assert.match(reg.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      const s = await client().login(u, 'correct horse');
      assert.equal(await s.whoami(), u);
    });

    test('R2 with a flipped signature: host_key_signature, and the password is never sent', async () => {
      const t = tampering('/v1/registration/pairing', (r) => (r.json.signature = flip(r.json.signature)));
      await refused(client({ fetch: t.fetch }).register(name('sig'), 'pw'), 'host_key_signature');
      assert.deepEqual(t.sent, ['/v1/registration/pairing']);
    });

    test('R2 signed by another host key (a MITM with its own key): host_key_changed against a pin', async () => {
      const pins = new Map();
      const pinStore = { get: (s) => pins.get(s) ?? null, set: (s, f) => pins.set(s, f) };
      await client({ pinStore }).register(name('pin'), 'pw');
      assert.equal(pins.size, 1, 'the first registration pins the key');
      pins.set(url, 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      const t = tampering('/never', () => {});
      await refused(client({ pinStore, fetch: t.fetch }).register(name('pin'), 'pw'), 'host_key_changed');
      assert.deepEqual(t.sent, ['/v1/registration/pairing'], 'nothing after R2');
      const given = client({ fingerprint: 'SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' });
      await refused(given.register(name('pin'), 'pw'), 'host_key_changed');
    });

    test('R2 with an extra, a missing or a mistyped field: invalid_message', async () => {
      for (const change of [(j) => (j.extra = 1), (j) => delete j.salt, (j) => (j.ic = '4096'), (j) => (j.salt = 'not base64!')]) {
        const t = tampering('/v1/registration/pairing', (r) => change(r.json));
        await refused(client({ fetch: t.fetch }).register(name('shape'), 'pw'), 'invalid_message');
      }
    });

    test('R2 with a non-canonical base64 salt: invalid_message', async () => {
      const t = tampering('/v1/registration/pairing', (r) => {
        // The same bytes, but the last character's unused bits set.
        const s = r.json.salt;
        const last = s.replace(/=+$/, '').slice(-1);
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
        r.json.salt = s.replace(/.(=*)$/, `${alphabet[alphabet.indexOf(last) | 1]}$1`);
      });
      await refused(client({ fetch: t.fetch }).register(name('canon'), 'pw'), 'invalid_message');
    });

    test('iteration counts outside [4096, maxIterations]: iteration_count', async () => {
      for (const ic of [1000, 4095, 2_000_000]) {
        const t = tampering('/v1/registration/pairing', (r) => (r.json.ic = ic));
        await refused(client({ fetch: t.fetch }).register(name('ic'), 'pw'), 'iteration_count');
      }
      const t = tampering('/v1/auth/pairing', (r) => (r.json.ic = 50_000));
      await refused(client({ fetch: t.fetch, maxIterations: 10_000 }).login(name('ic'), 'pw'), 'iteration_count');
    });

    test('a combined nonce that does not extend ours: nonce_mismatch', async () => {
      const t = tampering('/v1/registration/pairing', (r) => (r.json.nonce = `${'0'.repeat(64)}-${'1'.repeat(64)}`));
      await refused(client({ fetch: t.fetch }).register(name('nonce'), 'pw'), 'nonce_mismatch');
      const a = tampering('/v1/auth/pairing', (r) => (r.json.nonce = `${r.json.nonce}0`));
      await refused(client({ fetch: a.fetch }).login(name('nonce'), 'pw'), 'nonce_mismatch');
    });

    test('a small-order server X25519 key: invalid_public_key, nothing sent after it', async () => {
      const t = tampering('/v1/registration/pairing', (r) => (r.json.public_key = Buffer.alloc(32).toString('base64')));
      // The signature no longer covers the key: refused at the signature, before any DH.
      await refused(client({ fetch: t.fetch }).register(name('zero'), 'pw'), 'host_key_signature');
      const u = name('zero');
      await client().register(u, 'pw');
      const a = tampering('/v1/auth/pairing', (r) => (r.json.public_key = Buffer.alloc(32).toString('base64')));
      // Login signs nothing, so the all-zero shared secret is what refuses it.
      await refused(client({ fetch: a.fetch }).login(u, 'pw'), 'invalid_public_key');
      assert.ok(!a.sent.includes('/v1/auth/proof'), 'no proof sent');
    });

    test('R4 with a label that does not open, or another nonce: invalid_message', async () => {
      for (const change of [(j) => (j.secret_client_key = flip(j.secret_client_key)), (j) => (j.secret_server_key = flip(j.secret_server_key)), (j) => (j.nonce = j.nonce.replace(/.$/, (c) => (c === '0' ? '1' : '0')))]) {
        const t = tampering('/v1/registration/password', (r) => change(r.json));
        await refused(client({ fetch: t.fetch }).register(name('r4'), 'pw'), 'invalid_message');
      }
    });

    test('A4 with a wrong server signature: server_signature; with a bad session id: invalid_message', async () => {
      const u = name('a4');
      await client().register(u, 'pw');
      const t = tampering('/v1/auth/proof', (r) => (r.json.server_signature = flip(r.json.server_signature)));
      await refused(client({ fetch: t.fetch }).login(u, 'pw'), 'server_signature');
      const s = tampering('/v1/auth/proof', (r) => (r.json.session_id = 'a b'));
      await refused(client({ fetch: s.fetch }).login(u, 'pw'), 'invalid_message');
    });

    test('the server refusing: authentication_failed, username_taken, with the status', async () => {
      const u = name('refuse');
      await client().register(u, 'pw');
      await assert.rejects(client().login(u, 'wrong'), (e) => e.code === 'authentication_failed' && e.status === 401);
      await assert.rejects(client().login(name('nobody'), 'pw'), (e) => e.code === 'authentication_failed');
      await assert.rejects(client().register(u, 'pw'), (e) => e.code === 'username_taken' && e.status === 409);
    });

    test('signed responses: a missing, flipped or misplaced MAC, a changed body or status: response_mac', async () => {
      const u = name('mac');
      await client().register(u, 'pw');
      const cases = [
        (r) => r.headers.delete('scram-dh-mac'),
        (r) => r.headers.set('scram-dh-mac', flip(r.headers.get('scram-dh-mac'))),
        (r) => r.headers.set('scram-dh-mac', 'not base64'),
        (r) => (r.json.user = 'mallory'),
        (r) => (r.status = 201),
      ];
      for (const change of cases) {
        const t = tampering('/v1/ping', change);
        const s = await client({ fetch: t.fetch }).login(u, 'pw');
        await refused(s.fetch('/v1/ping'), 'response_mac');
        // The session itself is fine: an untampered request still verifies.
        assert.equal(await s.whoami(), u);
      }
    });

    test('logout: the server refuses the session afterwards (unknown_session, unverified)', async () => {
      const u = name('logout');
      await client().register(u, 'pw');
      const s = await client().login(u, 'pw');
      await s.logout();
      await assert.rejects(s.whoami(), (e) => e.code === 'unknown_session' && e.status === 401 && e.verified === false);
      s.forget();
      await refused(s.whoami(), 'unknown_session');
    });

    test('signed requests stay on the server of the session', async () => {
      const u = name('origin');
      await client().register(u, 'pw');
      const s = await client().login(u, 'pw');
      await refused(s.fetch('http://example.invalid/steal'), 'unsupported');
      const r = await s.fetch('/v1/ping?x=1&y=%20z', { method: 'GET' });
      assert.equal(r.status, 200, 'a query string is signed as sent');
    });

    test('random labels: only the returned credential logs in', async () => {
      const u = name('random');
      const reg = await client().register(u, 'pw', { labels: 'random' });
      assert.ok(reg.credential && reg.credential.clientKey.length === 32);
      assert.equal(await (await client().login(u, reg.credential)).whoami(), u);
      await refused(client().login(u, 'pw'), 'authentication_failed');
    });

    test('RFC 7804: a good exchange, a forged v=, a wrong password, a server extension', async () => {
      const u = name('rfc7804');
      await client().register(u, 'pencil');
      const r = await client().rfc7804Fetch('/v1/whoami', { username: u, password: 'pencil' });
      assert.deepEqual(await r.json(), { username: u });
      await refused(client().rfc7804Fetch('/v1/whoami', { username: u, password: 'wrong' }), 'authentication_failed');
      const forged = tampering('/v1/whoami', (x) => {
        const info = x.headers.get('authentication-info');
        if (!info) return;
        const data = /data="?([^",\s]+)/.exec(info)[1];
        const text = Buffer.from(data, 'base64').toString().replace(/^v=(.)/, (_, c) => `v=${c === 'A' ? 'B' : 'A'}`);
        x.headers.set('authentication-info', info.replace(data, Buffer.from(text).toString('base64')));
      });
      await refused(client({ fetch: forged.fetch }).rfc7804Fetch('/v1/whoami', { username: u, password: 'pencil' }), 'server_signature');
      const ext = tampering('/v1/whoami', (x) => {
        const ch = x.headers.get('www-authenticate');
        const m = ch && /data="?([^",\s]+)/.exec(ch);
        if (!m) return;
        const text = `m=ext,${Buffer.from(m[1], 'base64').toString()}`;
        x.headers.set('www-authenticate', ch.replace(m[1], Buffer.from(text).toString('base64')));
      });
      await refused(client({ fetch: ext.fetch }).rfc7804Fetch('/v1/whoami', { username: u, password: 'pencil' }), 'unsupported');
      const unexchanged = tampering('/v1/whoami', (x) => {
        x.status = 200;
        x.headers.delete('www-authenticate');
      });
      await refused(client({ fetch: unexchanged.fetch }).rfc7804Fetch('/v1/whoami', { username: u, password: 'pencil' }), 'server_signature');
    });

    test('random corruption of any handshake reply is refused with a ScramDhError, never a crash or a success', async () => {
      // A seeded xorshift, so a failure names the case that reproduces it.
      let state = Number(process.env.SCRAM_DH_FUZZ_SEED ?? 0x9e3779b9) >>> 0;
      const rand = (n) => {
        state ^= state << 13;
        state >>>= 0;
        state ^= state >>> 17;
        state ^= state << 5;
        state >>>= 0;
        return state % n;
      };
      const printable = ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~';
      const mutate = (text) => {
        for (;;) {
          const i = rand(text.length);
          let out;
          switch (rand(3)) {
            case 0:
              out = text.slice(0, i) + printable[rand(printable.length)] + text.slice(i + 1);
              break;
            case 1:
              out = text.slice(0, i);
              break;
            default:
              out = text.slice(0, i) + printable[rand(printable.length)] + text.slice(i);
          }
          if (out !== text) return out;
        }
      };
      const u = name('fuzz');
      await client().register(u, 'pw');
      const routes = ['/v1/registration/pairing', '/v1/registration/password', '/v1/auth/pairing', '/v1/auth/proof'];
      for (let i = 0; i < 80; i++) {
        const route = routes[i % routes.length];
        const seed = state;
        let mutated = '';
        let original = '';
        const t = tampering(route, (r) => {
          original = r.text;
          r.text = mutate(r.text);
          mutated = r.text;
          r.json = null;
        });
        const c = client({ fetch: t.fetch });
        const attempt = route.includes('registration') ? c.register(name('fuzz'), 'pw') : c.login(u, 'pw');
        const outcome = await attempt.then((v) => v, (e) => e);
        if (outcome instanceof Error) {
          assert.ok(outcome instanceof ScramDhError, `case ${i} (${route}, seed ${seed}): ${outcome.stack}`);
          continue;
        }
        // Whitespace between JSON tokens: the same message.
        if (sameJson(original, mutated)) continue;
        // SPEC 7: A4's session_id is not under the server signature. A changed
        // id may pass login; the first signed request is then refused.
        const sid = /"session_id":"([^"]*)"/.exec(mutated);
        assert.ok(route === '/v1/auth/proof' && sid, `case ${i} (${route}, seed ${seed}) succeeded with ${mutated}`);
        await assert.rejects(outcome.whoami(), (e) => e instanceof ScramDhError && e.code === 'unknown_session');
      }
    });

    test('SASLprep: the server and the client agree on non-ASCII names and passwords', async () => {
      const u = `\u2168-${name('prep')}`; // ROMAN NUMERAL NINE: NFKC gives "IX"
      const reg = await client().register(u, 'pa\u00ADss\u2003word'); // soft hyphen dropped, em space mapped to space
      assert.ok(reg.username.startsWith('IX-'));
      assert.equal(await (await client().login(reg.username, 'pass word')).whoami(), reg.username);
      await refused(client().register('bell\u0007', 'pw'), 'invalid_username');
      await refused(client().register(name('bidi'), '\u05d0a'), 'invalid_password');
      await refused(client().register('', 'pw'), 'invalid_username');
      await refused(client().register('x'.repeat(256), 'pw'), 'invalid_username');
      assert.equal(saslprep('I\u00ADX'), 'IX');
    });
  });
}
