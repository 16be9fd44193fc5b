// scram-dh in the browser: the client side of SPEC 7 over `fetch`.
//
// - `register`: in-band registration (SPEC 3a) over an ephemeral X25519
//   exchange, the server's Ed25519 host key pinned (trust on first use in the
//   page's storage, or a fingerprint the embedding page gives);
// - `login`: authentication (SPEC 4) with channel keys, giving a session whose
//   `fetch` signs each request and checks each response's MAC;
// - `session.logout()`, `session.whoami()`;
// - `rfc7804Fetch`: one request authenticated by standard SCRAM-SHA-256 over
//   HTTP (RFC 7804), for records registered with RFC labels.
//
// The password never leaves the page: registration sends it salted and
// stretched and AEAD-sealed under a DH key, login sends only the SCRAM proof.
// Every primitive comes from WebCrypto where the browser has it, else from
// @noble (./crypto.js).
//
// ```js
// import { ScramDhClient } from '/v1/ui/scram-dh.js';
// const client = new ScramDhClient({ baseUrl: location.origin });
// await client.register('alice', password);           // once
// const session = await client.login('alice', password);
// const r = await session.fetch('/api/notes', { method: 'POST', body: '{"text":"hi"}' });
// await session.logout();
// ```

import { concat, equal, primitives, randomBytes } from './crypto.js';
import { saslprep } from './saslprep.js';

export { saslprep };

/** The wire format version this module speaks. */
export const PROTOCOL = 'scram-dh/1';
/** The iteration count a client accepts at most unless told otherwise (as the CLI). */
export const DEFAULT_MAX_ITERATIONS = 1_000_000;
/** SPEC 2: never below this. */
export const MIN_ITERATIONS = 4096;
/** The localStorage key under which host-key pins are kept. */
export const PIN_STORAGE_KEY = 'scram-dh.known-hosts';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/**
 * A refusal or failure, with the SPEC error code when the server gave one
 * (`authentication_failed`, `username_taken`, `busy`, …) or one of this
 * module's own: `host_key_changed`, `host_key_signature`, `server_signature`,
 * `response_mac`, `redirect`, `iteration_count`, `invalid_public_key`,
 * `invalid_message` (the server's reply is malformed), `invalid_username`,
 * `invalid_password`, `unsupported`, `network`, `http_status`.
 */
export class ScramDhError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ status?: number, verified?: boolean, retryAfter?: number }} [details]
   *   `status`: the HTTP status; `verified`: false when the code comes from a
   *   response whose MAC did not verify (it may be forged); `retryAfter`: seconds
   */
  constructor(code, message, details = {}) {
    super(`${code}: ${message}`);
    this.name = 'ScramDhError';
    /** @type {string} */
    this.code = code;
    /** @type {number | undefined} */
    this.status = details.status;
    /** @type {boolean} */
    this.verified = details.verified !== false;
    /** @type {number | undefined} */
    this.retryAfter = details.retryAfter;
  }
}

// ---------------------------------------------------------------- encodings

/** @param {Uint8Array} bytes */
function b64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * Standard, padded base64 (SPEC 7), canonical only.
 * @param {unknown} text
 * @param {string} field for the error
 */
function unb64(text, field) {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new ScramDhError('invalid_message', `${field} is not base64`);
  }
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (b64(bytes) !== text) throw new ScramDhError('invalid_message', `${field} is not canonical base64`);
  return bytes;
}

/** @param {Uint8Array} bytes */
function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** @param {string | Uint8Array} x `lp(x)`: a 4-byte big-endian length, then x (SPEC 7). */
function lp(x) {
  const bytes = typeof x === 'string' ? enc.encode(x) : x;
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/** @param {number} n */
function u16(n) {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, n);
  return out;
}

/** @param {number} n */
function u32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/** @param {number} n */
function u64(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** `n(i)`: the AEAD nonce, 4 zero bytes then i as u64 big-endian (SPEC 7). @param {number} i */
function aeadNonce(i) {
  return concat(new Uint8Array(4), u64(i));
}

/** @param {Uint8Array} a @param {Uint8Array} b  XOR of two equal-length arrays */
function xor(a, b) {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** @param {...Uint8Array} arrays best-effort wipe of secrets */
function wipe(...arrays) {
  for (const a of arrays) a?.fill(0);
}

/** RFC 5802 saslname: `,` → `=2C`, `=` → `=3D`. @param {string} name */
function saslname(name) {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/**
 * The fingerprint of a 32-byte Ed25519 host key, as the CLI and OpenSSH show
 * them: `SHA256:` and the unpadded base64 of its SHA-256.
 * @param {Uint8Array} hostKey
 * @returns {Promise<string>}
 */
export async function fingerprintOf(hostKey) {
  return fingerprintWith(await primitives(), hostKey);
}

/**
 * `fingerprintOf` with a given set of primitives.
 * @param {import('./crypto.js').Primitives} p
 * @param {Uint8Array} hostKey
 */
async function fingerprintWith(p, hostKey) {
  return `SHA256:${b64(await p.sha256(hostKey)).replace(/=+$/, '')}`;
}

/** @param {string} username */
function normalizedUsername(username) {
  let name;
  try {
    name = saslprep(String(username));
  } catch (e) {
    throw new ScramDhError('invalid_username', `the username is not allowed: ${/** @type {Error} */ (e).message}`);
  }
  const bytes = enc.encode(name).length;
  if (bytes < 1 || bytes > 255) throw new ScramDhError('invalid_username', 'a username is 1 to 255 bytes after SASLprep');
  return name;
}

/** @param {string} password */
function preparedPassword(password) {
  try {
    const prepared = saslprep(String(password));
    if (prepared.length === 0) throw new Error('the password is empty');
    return enc.encode(prepared);
  } catch (e) {
    throw new ScramDhError('invalid_password', `the password is not allowed: ${/** @type {Error} */ (e).message}`);
  }
}

// ---------------------------------------------------------------- pins

/**
 * Where host-key pins live: `get` answers the pinned fingerprint of a server
 * or null, `set` records one. Either may return a promise.
 * @typedef {object} PinStore
 * @property {(server: string) => (string | null | Promise<string | null>)} get
 * @property {(server: string, fingerprint: string) => (void | Promise<void>)} set
 */

/** @returns {PinStore} pins in localStorage when the page has it, else in memory */
export function defaultPinStore() {
  /** @type {Map<string, string>} */
  const memory = new Map();
  /** @returns {Storage | null} */
  const storage = () => {
    try {
      return globalThis.localStorage ?? null;
    } catch {
      return null; // storage disabled by the browser
    }
  };
  /** @returns {Record<string, string>} */
  const read = () => {
    const s = storage();
    if (!s) return Object.fromEntries(memory);
    try {
      const v = JSON.parse(s.getItem(PIN_STORAGE_KEY) ?? '{}');
      return v && typeof v === 'object' ? v : {};
    } catch {
      return {};
    }
  };
  return {
    get: (server) => {
      const v = read()[server];
      return typeof v === 'string' ? v : null;
    },
    set: (server, fingerprint) => {
      const s = storage();
      if (!s) {
        memory.set(server, fingerprint);
        return;
      }
      const all = read();
      all[server] = fingerprint;
      s.setItem(PIN_STORAGE_KEY, JSON.stringify(all));
    },
  };
}

// ---------------------------------------------------------------- the client

/** @typedef {(input: URL, init: RequestInit) => Promise<Response>} FetchLike */

/**
 * @typedef {object} ClientOptions
 * @property {string} [baseUrl] the server (default: the page's origin)
 * @property {string} [fingerprint] pin the host key to this `SHA256:…`
 *   fingerprint instead of trusting it on first use
 * @property {PinStore} [pinStore] where trust-on-first-use pins live (default: localStorage)
 * @property {number} [maxIterations] refuse iteration counts above this (default 1,000,000)
 * @property {number} [timeoutMs] each HTTP exchange, at most (default 15,000)
 * @property {boolean} [webcrypto] false: use the noble packages for every primitive
 * @property {FetchLike} [fetch] the fetch to use (default: the global one)
 */

/**
 * What a registration leaves with the client.
 * @typedef {object} Registration
 * @property {string} username the SASLprep-normalised username
 * @property {'rfc' | 'random'} labels
 * @property {string} fingerprint the server's host-key fingerprint, now pinned
 * @property {Credential | undefined} credential with `random` labels: the keys
 *   only this client holds (keep them secret); undefined with `rfc` labels,
 *   where the password alone logs in
 */

/**
 * A saved credential: the keys of a `random`-labels registration.
 * @typedef {object} Credential
 * @property {string} username
 * @property {Uint8Array} clientKey
 * @property {Uint8Array} serverKey
 */

/** A client for one scram-dh server. */
export class ScramDhClient {
  /** @type {URL} */
  #base;
  /** @type {ClientOptions} */
  #options;
  /** @type {PinStore} */
  #pins;

  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    const base = options.baseUrl ?? globalThis.location?.origin;
    if (!base) throw new ScramDhError('unsupported', 'no baseUrl and no page origin');
    this.#base = new URL(base);
    if (this.#base.protocol !== 'http:' && this.#base.protocol !== 'https:') {
      throw new ScramDhError('unsupported', 'baseUrl must be http: or https:');
    }
    if (options.fingerprint !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(options.fingerprint)) {
      throw new ScramDhError('unsupported', 'a fingerprint looks like SHA256:<43 base64 characters>');
    }
    this.#options = { ...options };
    this.#pins = options.pinStore ?? defaultPinStore();
  }

  /** The name pins are kept under: the server's origin. */
  get server() {
    return this.#base.origin;
  }

  /** Which engine serves each primitive here. @returns {Promise<import('./crypto.js').Engines>} */
  async engines() {
    return (await this.#primitives()).engines;
  }

  /** The fingerprint pinned for this server, or null. @returns {Promise<string | null>} */
  async pinnedFingerprint() {
    return this.#options.fingerprint ?? (await this.#pins.get(this.server));
  }

  #primitives() {
    return primitives({ webcrypto: this.#options.webcrypto });
  }

  get #maxIterations() {
    return this.#options.maxIterations ?? DEFAULT_MAX_ITERATIONS;
  }

  /**
   * POSTs one handshake message; answers the reply object, or throws the
   * server's error.
   * @param {string} route
   * @param {object} message
   * @param {string} expectType
   */
  async #step(route, message, expectType) {
    const r = await this.#send(route, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(message),
    });
    const reply = await replyObject(r);
    if (reply.type !== expectType) throw new ScramDhError('invalid_message', `expected ${expectType}, got ${String(reply.type)}`);
    if (!r.ok) throw new ScramDhError('http_status', `status ${r.status} with a ${expectType}`, { status: r.status });
    return reply;
  }

  /**
   * @param {string} path
   * @param {RequestInit} init
   */
  async #send(path, init) {
    const f = this.#options.fetch ?? globalThis.fetch.bind(globalThis);
    try {
      return await f(new URL(path, this.#base), {
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 15_000),
        ...init,
      });
    } catch (e) {
      throw new ScramDhError('network', `${path}: ${/** @type {Error} */ (e).message}`);
    }
  }

  /**
   * Registers `username` in-band (SPEC 3a) over X25519. With `labels: 'rfc'`
   * (the default here) the password alone logs in later, from any browser or
   * standard SCRAM client; with `'random'` only the returned credential does.
   * The host key is checked against the pin (or recorded, on first use) before
   * the password is sent.
   * @param {string} username
   * @param {string} password
   * @param {{ labels?: 'rfc' | 'random', group?: 'x25519' }} [options]
   * @returns {Promise<Registration>}
   * @throws {ScramDhError} `username_taken`, `host_key_changed`, `busy`, …
   */
  async register(username, password, options = {}) {
    const labels = options.labels ?? 'rfc';
    const group = options.group ?? 'x25519';
    if (labels !== 'rfc' && labels !== 'random') throw new ScramDhError('unsupported', 'labels are "rfc" or "random"');
    // FFDH is in neither WebCrypto nor @noble: the browser registers over X25519.
    if (group !== 'x25519') throw new ScramDhError('unsupported', 'the browser client registers over x25519 only');
    const name = normalizedUsername(username);
    const pw = preparedPassword(password);
    const p = await this.#primitives();
    const pair = await p.x25519();
    const clientNonce = hex(randomBytes(32));
    const r1 = {
      type: 'registration_pairing',
      username: name,
      group,
      public_key: b64(pair.publicKey),
      client_nonce: clientNonce,
      labels,
    };
    const r2 = await this.#step('/v1/registration/pairing', r1, 'registration_pairing');
    exactFields(r2, ['type', 'salt', 'ic', 'public_key', 'nonce', 'host_key', 'signature']);
    const salt = unb64(r2.salt, 'salt');
    const ic = this.#iterations(r2.ic);
    const serverPublic = unb64(r2.public_key, 'public_key');
    const nonce = combinedNonce(r2.nonce, clientNonce);
    const hostKey = unb64(r2.host_key, 'host_key');
    const signature = unb64(r2.signature, 'signature');
    if (salt.length === 0) throw new ScramDhError('invalid_message', 'empty salt');
    if (serverPublic.length !== 32) throw new ScramDhError('invalid_public_key', 'an X25519 public key is 32 bytes');
    if (hostKey.length !== 32 || signature.length !== 64) throw new ScramDhError('invalid_message', 'host_key or signature of the wrong size');

    // T and h (SPEC 7): text fields as their UTF-8 wire text, binary ones decoded.
    const transcript = concat(
      lp(`${PROTOCOL} registration`),
      lp(name),
      lp(group),
      lp(pair.publicKey),
      lp(clientNonce),
      lp(labels),
      lp(salt),
      u32(ic),
      lp(serverPublic),
      lp(nonce),
      lp(hostKey),
    );
    const h = await p.sha256(transcript);
    if (!(await p.ed25519Verify(hostKey, signature, h))) {
      throw new ScramDhError('host_key_signature', "the server's signature over the registration does not verify");
    }
    const fingerprint = await fingerprintWith(p, hostKey);
    const pinned = await this.pinnedFingerprint();
    if (pinned !== null && pinned !== fingerprint) {
      throw new ScramDhError(
        'host_key_changed',
        `the server's host key is ${fingerprint}, but ${pinned} is pinned for ${this.server}; nothing was sent`,
      );
    }

    const z = await agree(pair, serverPublic);
    const [kc2s, ks2c, derivedLabels] = await Promise.all([
      p.hkdf(z, h, enc.encode(`${PROTOCOL} registration c2s`), 32),
      p.hkdf(z, h, enc.encode(`${PROTOCOL} registration s2c`), 32),
      labels === 'random' ? p.hkdf(z, h, enc.encode(`${PROTOCOL} labels`), 64) : Promise.resolve(null),
    ]);
    const clientLabel = derivedLabels ? derivedLabels.slice(0, 32) : enc.encode('Client Key');
    const serverLabel = derivedLabels ? derivedLabels.slice(32) : enc.encode('Server Key');
    const saltedPassword = await p.pbkdf2(pw, salt, ic);
    wipe(pw, z);
    const r3 = {
      type: 'registration_send_password',
      secret_key: b64(await p.seal(kc2s, aeadNonce(0), h, saltedPassword)),
      nonce,
    };
    wipe(kc2s);
    let r4;
    try {
      r4 = await this.#step('/v1/registration/password', r3, 'registration_keys_generation');
    } catch (e) {
      wipe(saltedPassword, ks2c);
      throw e;
    }
    try {
      exactFields(r4, ['type', 'secret_client_key', 'secret_server_key', 'nonce']);
      if (r4.nonce !== nonce) throw new ScramDhError('invalid_message', 'R4 carries another nonce');
      const gotClient = await openOr(p, ks2c, 0, h, unb64(r4.secret_client_key, 'secret_client_key'));
      const gotServer = await openOr(p, ks2c, 1, h, unb64(r4.secret_server_key, 'secret_server_key'));
      if (!equal(gotClient, clientLabel) || !equal(gotServer, serverLabel)) {
        throw new ScramDhError('invalid_message', "R4's labels are not the ones both sides derived");
      }
      // The record is committed (R4 comes after it): pin the key now.
      if (pinned === null) await this.#pins.set(this.server, fingerprint);
      /** @type {Credential | undefined} */
      let credential;
      if (labels === 'random') {
        credential = {
          username: name,
          clientKey: await p.hmac(saltedPassword, clientLabel),
          serverKey: await p.hmac(saltedPassword, serverLabel),
        };
      }
      return { username: name, labels, fingerprint, credential };
    } finally {
      wipe(saltedPassword, ks2c);
    }
  }

  /** @param {unknown} ic */
  #iterations(ic) {
    if (typeof ic !== 'number' || !Number.isInteger(ic) || ic < 0 || ic > 0xffffffff) {
      throw new ScramDhError('invalid_message', 'ic is not a u32 integer');
    }
    if (ic < MIN_ITERATIONS || ic > this.#maxIterations) {
      throw new ScramDhError('iteration_count', `the server asks for ${ic} iterations; accepted are ${MIN_ITERATIONS} to ${this.#maxIterations}`);
    }
    return ic;
  }

  /**
   * Authenticates (SPEC 4) over X25519 channel keys and opens an HTTP session.
   * `secret` is the password (records with RFC labels) or the credential a
   * `random`-labels registration returned.
   * @param {string} username
   * @param {string | Credential} secret
   * @returns {Promise<ScramDhSession>}
   * @throws {ScramDhError} `authentication_failed`, `server_signature`, `busy`, …
   */
  async login(username, secret) {
    const name = normalizedUsername(username);
    const p = await this.#primitives();
    const pw = typeof secret === 'string' ? preparedPassword(secret) : null;
    if (pw === null && !(typeof secret === 'object' && secret.clientKey instanceof Uint8Array && secret.serverKey instanceof Uint8Array)) {
      throw new ScramDhError('invalid_password', 'give a password or a credential from register()');
    }
    const group = 'x25519';
    const pair = await p.x25519();
    const clientNonce = hex(randomBytes(32));
    const a1 = { type: 'auth_pairing', username: name, client_nonce: clientNonce, group, public_key: b64(pair.publicKey) };
    const a2 = await this.#step('/v1/auth/pairing', a1, 'auth_pairing');
    exactFields(a2, ['type', 'salt', 'ic', 'nonce', 'public_key']);
    const saltText = /** @type {string} */ (a2.salt);
    const salt = unb64(saltText, 'salt');
    const ic = this.#iterations(a2.ic);
    const nonce = combinedNonce(a2.nonce, clientNonce);
    const serverPublic = unb64(a2.public_key, 'public_key');
    if (salt.length === 0) throw new ScramDhError('invalid_message', 'empty salt');
    if (serverPublic.length !== 32) throw new ScramDhError('invalid_public_key', 'an X25519 public key is 32 bytes');
    // The server's key is checked (a small-order key gives an all-zero Z) before any proof is sent.
    const z = await agree(pair, serverPublic);

    let clientKey;
    let serverKey;
    if (pw) {
      const saltedPassword = await p.pbkdf2(pw, salt, ic);
      clientKey = await p.hmac(saltedPassword, enc.encode('Client Key'));
      serverKey = await p.hmac(saltedPassword, enc.encode('Server Key'));
      wipe(pw, saltedPassword);
    } else {
      const c = /** @type {Credential} */ (secret);
      clientKey = c.clientKey.slice();
      serverKey = c.serverKey.slice();
    }
    try {
      const storedKey = await p.sha256(clientKey);
      // AuthMessage (SPEC 7), with the two public keys bound as channel binding.
      const cb = await p.sha256(concat(lp(pair.publicKey), lp(serverPublic)));
      const gs2 = enc.encode(`p=scram-dh-${group},,`);
      const authMessage = enc.encode(
        `n=${saslname(name)},r=${clientNonce},r=${nonce},s=${saltText},i=${ic},c=${b64(concat(gs2, cb))},r=${nonce}`,
      );
      const clientSignature = await p.hmac(storedKey, authMessage);
      const a3 = { type: 'auth_client_proof_generation', client_proof: b64(xor(clientKey, clientSignature)), nonce };
      const a4 = await this.#step('/v1/auth/proof', a3, 'auth_proof');
      exactFields(a4, ['type', 'server_signature', 'session_id']);
      const expected = await p.hmac(serverKey, authMessage);
      if (!equal(unb64(a4.server_signature, 'server_signature'), expected)) {
        throw new ScramDhError('server_signature', "the server's signature is wrong: it does not hold this user's record");
      }
      const sid = a4.session_id;
      if (typeof sid !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(sid)) {
        throw new ScramDhError('invalid_message', 'A4 carries no usable session_id');
      }
      const prkSalt = await p.hmac(clientKey, authMessage);
      const [kc2s, ks2c] = await Promise.all([
        p.hkdf(z, prkSalt, enc.encode(`${PROTOCOL} session c2s`), 32),
        p.hkdf(z, prkSalt, enc.encode(`${PROTOCOL} session s2c`), 32),
      ]);
      wipe(z, prkSalt);
      return new ScramDhSession(this.#base, name, sid, kc2s, ks2c, p, (path, init) => this.#send(path, init));
    } finally {
      wipe(clientKey, serverKey, z);
    }
  }

  /**
   * One request authenticated by standard SCRAM-SHA-256 over HTTP (RFC 7804):
   * two round trips, the server's signature in `Authentication-Info` checked
   * before the response is returned. Works for records with RFC labels (the
   * page registers those) on routes that take RFC 7804 (`/v1/whoami`,
   * `/v1/ping`, the gateway).
   * @param {string} path path and query on the server
   * @param {{ username: string, password: string, method?: string, body?: string | Uint8Array, headers?: HeadersInit }} request
   * @returns {Promise<Response>}
   */
  async rfc7804Fetch(path, request) {
    const p = await this.#primitives();
    const name = normalizedUsername(request.username);
    const pw = preparedPassword(request.password);
    const method = (request.method ?? 'GET').toUpperCase();
    const body = request.body === undefined ? undefined : /** @type {Uint8Array<ArrayBuffer>} */ (typeof request.body === 'string' ? enc.encode(request.body) : request.body);
    const clientNonce = b64(randomBytes(24));
    const bare = `n=${saslname(name)},r=${clientNonce}`;
    const headers = (/** @type {string} */ authorization) => {
      const h = new Headers(request.headers);
      h.set('Authorization', authorization);
      return h;
    };
    const first = await this.#send(path, { method, body, headers: headers(`SCRAM-SHA-256 data=${b64(enc.encode(`n,,${bare}`))}`) });
    const challenge = scramChallenge(first.headers.get('WWW-Authenticate'));
    if (first.status !== 401 || !challenge?.sid || !challenge.data) {
      throw await unexchanged(first, challenge);
    }
    const serverFirst = decodeData(challenge.data);
    const attrs = scramAttributes(serverFirst);
    if (attrs.has('m')) throw new ScramDhError('unsupported', 'the server asks for a SCRAM extension');
    const nonce = attrs.get('r');
    if (!nonce || !nonce.startsWith(clientNonce) || nonce.length === clientNonce.length) {
      throw new ScramDhError('invalid_message', "the server's nonce does not extend ours");
    }
    const salt = unb64(attrs.get('s'), 's');
    const icText = attrs.get('i') ?? '';
    if (!/^[1-9][0-9]{0,9}$/.test(icText)) throw new ScramDhError('invalid_message', 'i is not a count');
    const ic = this.#iterations(Number(icText));
    const saltedPassword = await p.pbkdf2(pw, salt, ic);
    wipe(pw);
    const clientKey = await p.hmac(saltedPassword, enc.encode('Client Key'));
    const serverKey = await p.hmac(saltedPassword, enc.encode('Server Key'));
    wipe(saltedPassword);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = enc.encode(`${bare},${serverFirst},${withoutProof}`);
    const proof = xor(clientKey, await p.hmac(await p.sha256(clientKey), authMessage));
    const expected = await p.hmac(serverKey, authMessage);
    wipe(clientKey, serverKey);
    const clientFinal = `${withoutProof},p=${b64(proof)}`;
    const second = await this.#send(path, {
      method,
      body,
      headers: headers(`SCRAM-SHA-256 sid=${challenge.sid}, data=${b64(enc.encode(clientFinal))}`),
    });
    const info = authParams(second.headers.get('Authentication-Info') ?? '');
    if (!info.has('data')) {
      const again = scramChallenge(second.headers.get('WWW-Authenticate'));
      throw await unexchanged(second, again);
    }
    if (info.get('sid') !== challenge.sid) throw new ScramDhError('invalid_message', 'Authentication-Info names another sid');
    const serverFinal = scramAttributes(decodeData(/** @type {string} */ (info.get('data'))));
    if (serverFinal.has('e')) throw new ScramDhError(scramError(serverFinal.get('e')), `the server refused: e=${serverFinal.get('e')}`);
    if (!equal(unb64(serverFinal.get('v'), 'v'), expected)) {
      throw new ScramDhError('server_signature', "the server's signature is wrong: it does not hold this user's record");
    }
    return second;
  }
}

/**
 * @param {{ agree: (peer: Uint8Array) => Promise<Uint8Array> }} pair
 * @param {Uint8Array} peer
 */
async function agree(pair, peer) {
  let z;
  try {
    z = await pair.agree(peer);
  } catch {
    // WebCrypto refuses a small-order point outright.
    throw new ScramDhError('invalid_public_key', "the server's X25519 key is of small order");
  }
  if (z.every((b) => b === 0)) throw new ScramDhError('invalid_public_key', 'the X25519 shared secret is all zero');
  return z;
}

/**
 * @param {import('./crypto.js').Primitives} p
 * @param {Uint8Array} key @param {number} i @param {Uint8Array} aad @param {Uint8Array} sealed
 */
async function openOr(p, key, i, aad, sealed) {
  try {
    return await p.open(key, aeadNonce(i), aad, sealed);
  } catch {
    throw new ScramDhError('invalid_message', 'R4 does not open under the registration key');
  }
}

/** @param {unknown} nonce @param {string} clientNonce */
function combinedNonce(nonce, clientNonce) {
  if (typeof nonce !== 'string' || !nonce.startsWith(`${clientNonce}-`) || !/^[0-9a-f]{64}$/.test(nonce.slice(65))) {
    throw new ScramDhError('nonce_mismatch', 'the combined nonce does not start with our client nonce');
  }
  return nonce;
}

/** @param {Record<string, unknown>} msg @param {string[]} fields exactly these (SPEC 7) */
function exactFields(msg, fields) {
  const keys = Object.keys(msg);
  if (keys.length !== fields.length || !fields.every((f) => Object.hasOwn(msg, f))) {
    throw new ScramDhError('invalid_message', `${String(msg.type)} has fields ${keys.join(',')}, expected ${fields.join(',')}`);
  }
}

/**
 * The JSON object of a handshake reply; the server's error object as a throw.
 * @param {Response} r
 * @returns {Promise<Record<string, any>>}
 */
async function replyObject(r) {
  const text = await r.text();
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ScramDhError('http_status', `status ${r.status} without a JSON reply`, { status: r.status });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ScramDhError('invalid_message', 'the reply is not an object');
  if (v.type === 'error') throw errorOf(v, r);
  return v;
}

/**
 * The server's error object as a ScramDhError.
 * @param {Record<string, unknown>} v
 * @param {Response} r
 * @param {boolean} [verified]
 */
function errorOf(v, r, verified = true) {
  const code = typeof v.code === 'string' && /^[a-z_]{1,40}$/.test(v.code) ? v.code : 'server_error';
  const message = typeof v.message === 'string' ? v.message.slice(0, 300) : '';
  const retry = Number(r.headers.get('Retry-After'));
  return new ScramDhError(code, message, { status: r.status, verified, retryAfter: Number.isFinite(retry) && retry > 0 ? retry : undefined });
}

// ---------------------------------------------------------------- the session

/**
 * A logged-in HTTP session (SPEC 7, "After authentication"): `fetch` signs
 * each request with `k_c2s` and checks each response's `Scram-DH-Mac` with
 * `k_s2c`. The keys live in private fields and are never stored; `forget`
 * wipes them. After `logout` the server has forgotten the session, so any
 * later request is refused there (`unknown_session`) — the keys are worth
 * nothing by then, and the application sees the server's own answer.
 */
export class ScramDhSession {
  /** @type {URL} */
  #base;
  /** @type {string} */
  #sid;
  /** @type {Uint8Array} */
  #kc2s;
  /** @type {Uint8Array} */
  #ks2c;
  /** @type {(...parts: Uint8Array[]) => Promise<Uint8Array>} */
  #signC2s;
  /** @type {(...parts: Uint8Array[]) => Promise<Uint8Array>} */
  #macS2c;
  /** @type {import('./crypto.js').Primitives} */
  #p;
  /** @type {(path: string, init: RequestInit) => Promise<Response>} */
  #send;
  #nextSeq = 0;
  #ended = false;

  /**
   * Made by `ScramDhClient.login`.
   * @param {URL} base @param {string} username @param {string} sid
   * @param {Uint8Array} kc2s @param {Uint8Array} ks2c
   * @param {import('./crypto.js').Primitives} p
   * @param {(path: string, init: RequestInit) => Promise<Response>} send
   */
  constructor(base, username, sid, kc2s, ks2c, p, send) {
    this.#base = base;
    /** The SASLprep-normalised username the server authenticated. */
    this.username = username;
    this.#sid = sid;
    this.#kc2s = kc2s;
    this.#ks2c = ks2c;
    // WebCrypto imports its own copies, not extractable; forget() wipes ours and drops those.
    this.#signC2s = p.hmacKeyed(kc2s);
    this.#macS2c = p.hmacKeyed(ks2c);
    this.#p = p;
    this.#send = send;
  }

  /** Whether `forget` ended this session here. */
  get ended() {
    return this.#ended;
  }

  /**
   * A signed request with the shape of `fetch`: `input` is a path on the
   * server (or a URL of the same origin), `init` as fetch's (method, headers,
   * body as a string, bytes, ArrayBuffer, Blob or URLSearchParams, signal).
   * Redirects are not followed. The answer is a Response whose MAC verified.
   * @param {string | URL} input
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   * @throws {ScramDhError} `response_mac` when the response's MAC is missing or
   *   wrong — with the server's code (`unknown_session` after a logout, …)
   *   and `verified: false` when an error object came unsigned
   */
  async fetch(input, init = {}) {
    if (this.#ended) throw new ScramDhError('unknown_session', 'this session was forgotten here');
    const url = new URL(String(input), this.#base);
    if (url.origin !== this.#base.origin) {
      throw new ScramDhError('unsupported', `signed requests go to ${this.#base.origin} only`);
    }
    const method = (init.method ?? 'GET').toUpperCase();
    const body = await bodyBytes(init.body);
    const seq = this.#nextSeq++;
    const pathAndQuery = url.pathname + url.search;
    const mac = await this.#signC2s(lp(method), lp(pathAndQuery), u64(seq), await this.#p.sha256(body));
    const headers = new Headers(init.headers);
    headers.set('Authorization', `SCRAM-DH sid=${this.#sid}, seq=${seq}, mac=${b64(mac)}`);
    const r = await this.#send(pathAndQuery, {
      method,
      headers,
      body: body.length > 0 ? /** @type {Uint8Array<ArrayBuffer>} */ (body) : undefined,
      ...(init.signal ? { signal: init.signal } : {}),
    });
    if (r.type === 'opaqueredirect') {
      throw new ScramDhError('redirect', `${pathAndQuery}: the server answered a redirect, which a signed request does not follow`);
    }
    const bytes = new Uint8Array(await r.arrayBuffer());
    const expected = await this.#macS2c(u16(r.status), u64(seq), await this.#p.sha256(bytes));
    const presented = r.headers.get('Scram-DH-Mac');
    let good = false;
    if (presented !== null) {
      try {
        good = equal(unb64(presented.trim(), 'Scram-DH-Mac'), expected);
      } catch {
        good = false;
      }
    }
    if (!good) {
      let v = null;
      try {
        v = JSON.parse(dec.decode(bytes));
      } catch {
        v = null;
      }
      if (v && typeof v === 'object' && v.type === 'error') throw errorOf(v, r, false);
      throw new ScramDhError('response_mac', `${pathAndQuery}: the response (status ${r.status}) has no valid Scram-DH-Mac; it may have been tampered with`, {
        status: r.status,
        verified: false,
      });
    }
    const nullBody = r.status === 204 || r.status === 205 || r.status === 304;
    return new Response(nullBody ? null : bytes, { status: r.status, statusText: r.statusText, headers: r.headers });
  }

  /**
   * `GET /v1/whoami`: the username the server holds for this session.
   * @returns {Promise<string>}
   */
  async whoami() {
    const r = await this.fetch('/v1/whoami');
    const v = await verifiedJson(r);
    if (typeof v.username !== 'string') throw new ScramDhError('invalid_message', 'whoami without a username');
    return v.username;
  }

  /**
   * `POST /v1/logout`: the server ends the session (on every node sharing its
   * session store); later requests on it are refused there.
   */
  async logout() {
    const r = await this.fetch('/v1/logout', { method: 'POST' });
    if (!r.ok) await verifiedJson(r);
  }

  /** Forgets the session here without telling the server (it expires there). */
  forget() {
    this.#end();
  }

  #end() {
    this.#ended = true;
    wipe(this.#kc2s, this.#ks2c);
    // Drop the imported keys too.
    const gone = () => Promise.reject(new ScramDhError('unknown_session', 'this session was forgotten here'));
    this.#signC2s = gone;
    this.#macS2c = gone;
  }

  /** Keeps the session id and keys out of logs and JSON. */
  toJSON() {
    return { username: this.username, ended: this.#ended };
  }
}

/**
 * The JSON body of a verified response; an error object throws its code.
 * @param {Response} r
 */
async function verifiedJson(r) {
  let v;
  try {
    v = await r.json();
  } catch {
    throw new ScramDhError('http_status', `status ${r.status} without a JSON body`, { status: r.status });
  }
  if (v && typeof v === 'object' && v.type === 'error') throw errorOf(v, r, true);
  if (!r.ok) throw new ScramDhError('http_status', `status ${r.status}`, { status: r.status });
  return v;
}

/** @param {BodyInit | null | undefined} body */
async function bodyBytes(body) {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof body === 'string') return enc.encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof Blob) return new Uint8Array(await body.arrayBuffer());
  if (body instanceof URLSearchParams) return enc.encode(body.toString());
  throw new ScramDhError('unsupported', 'a signed body is a string, bytes, a Blob or URLSearchParams');
}

// ---------------------------------------------------------------- RFC 7804 text

/**
 * auth-params of a header value (`k=v` or `k="quoted"`, comma separated).
 * @param {string} text
 * @returns {Map<string, string>}
 */
function authParams(text) {
  /** @type {Map<string, string>} */
  const out = new Map();
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)/gy;
  let m;
  while ((m = re.exec(text)) !== null && m[0] !== '') {
    const v = m[2].startsWith('"') ? m[2].slice(1, -1).replace(/\\(.)/g, '$1') : m[2];
    out.set(m[1].toLowerCase(), v);
    if (re.lastIndex >= text.length) break;
  }
  return out;
}

/**
 * The SCRAM-SHA-256 challenge's parameters in a WWW-Authenticate value that
 * may hold several challenges.
 * @param {string | null} header
 * @returns {{ sid?: string, data?: string, realm?: string } | null}
 */
function scramChallenge(header) {
  if (!header) return null;
  const at = header.search(/(^|[\s,])SCRAM-SHA-256(\s|$)/i);
  if (at < 0) return null;
  let rest = header.slice(at).replace(/^[\s,]*SCRAM-SHA-256/i, '');
  // The next challenge starts at a token that is not followed by '='.
  const next = rest.search(/,\s*[A-Za-z0-9_-]+(\s+[A-Za-z0-9_-]+=|\s*$)/);
  if (next >= 0) rest = rest.slice(0, next);
  const params = authParams(rest.trim());
  return { sid: params.get('sid'), data: params.get('data'), realm: params.get('realm') };
}

/** @param {string} data base64 of a SCRAM message */
function decodeData(data) {
  try {
    return dec.decode(unb64(data, 'data'));
  } catch {
    throw new ScramDhError('invalid_message', 'the SCRAM data is not base64 UTF-8');
  }
}

/** `k=v,k=v` of RFC 5802. @param {string} text */
function scramAttributes(text) {
  /** @type {Map<string, string>} */
  const out = new Map();
  for (const part of text.split(',')) {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!m) throw new ScramDhError('invalid_message', 'a SCRAM attribute without a name');
    if (!out.has(m[1])) out.set(m[1], m[2]);
  }
  return out;
}

/** RFC 5802 `e=` values as this module's codes. @param {string | undefined} e */
function scramError(e) {
  return e === 'invalid-proof' || e === 'unknown-user' ? 'authentication_failed' : 'scram_refused';
}

/**
 * The refusal of an RFC 7804 exchange that did not happen.
 * @param {Response} r
 * @param {{ data?: string } | null} challenge
 */
async function unexchanged(r, challenge) {
  if (challenge?.data) {
    const e = scramAttributes(decodeData(challenge.data)).get('e');
    if (e !== undefined) return new ScramDhError(scramError(e), `the server refused: e=${e}`, { status: r.status });
  }
  let v = null;
  try {
    v = JSON.parse(await r.text());
  } catch {
    v = null;
  }
  if (v && typeof v === 'object' && v.type === 'error') return errorOf(v, r, false);
  if (r.ok) return new ScramDhError('server_signature', `status ${r.status} without a SCRAM exchange: nothing proves who answered`, { status: r.status });
  return new ScramDhError('http_status', `status ${r.status} without a SCRAM exchange`, { status: r.status });
}
