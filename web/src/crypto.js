// The primitives the browser client needs, each from WebCrypto when the browser
// has it and from the audited @noble packages when it does not (SPEC 2 and 7:
// SHA-256, HMAC-SHA-256, PBKDF2, HKDF, X25519, Ed25519, ChaCha20-Poly1305).
// No cryptography is written here: this file only chooses and adapts.
//
// Which engine serves which primitive is decided once, by a probe that runs a
// known answer through WebCrypto (RFC 8032 test 1 for Ed25519, RFC 7748 6.1
// for X25519, RFC 8439 2.8.2 for ChaCha20-Poly1305); a primitive whose probe
// throws or answers wrongly comes from @noble instead. Firefox and Safari lack
// ChaCha20-Poly1305; a page on plain HTTP from a host other than localhost is
// not a secure context and has no `crypto.subtle` at all.

import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { expand as hkdfExpand, extract as hkdfExtract } from '@noble/hashes/hkdf.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { pbkdf2Async } from '@noble/hashes/pbkdf2.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

/** @typedef {'webcrypto' | 'noble'} EngineName */

/**
 * Which implementation each primitive uses.
 * @typedef {object} Engines
 * @property {EngineName} sha256
 * @property {EngineName} hmac
 * @property {EngineName} pbkdf2
 * @property {EngineName} hkdf
 * @property {EngineName} x25519
 * @property {EngineName} ed25519
 * @property {EngineName} chacha20poly1305
 */

/**
 * An ephemeral X25519 key pair: its public key and a one-shot agreement.
 * @typedef {object} X25519Pair
 * @property {Uint8Array} publicKey 32 bytes
 * @property {(peer: Uint8Array) => Promise<Uint8Array>} agree the 32-byte shared secret with `peer`
 */

/**
 * The primitives, bound to their engines.
 * @typedef {object} Primitives
 * @property {Engines} engines
 * @property {(data: Uint8Array) => Promise<Uint8Array>} sha256
 * @property {(key: Uint8Array, ...parts: Uint8Array[]) => Promise<Uint8Array>} hmac HMAC-SHA-256 over the parts concatenated
 * @property {(key: Uint8Array) => (...parts: Uint8Array[]) => Promise<Uint8Array>} hmacKeyed HMAC-SHA-256
 *   under one key used many times (a session's): WebCrypto imports it once, not extractable;
 *   the noble packages read `key` itself at each call, so wiping it disables them
 * @property {(password: Uint8Array, salt: Uint8Array, iterations: number) => Promise<Uint8Array>} pbkdf2 PBKDF2-HMAC-SHA-256, 32 bytes
 * @property {(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number) => Promise<Uint8Array>} hkdf HKDF-SHA-256 (extract, then expand)
 * @property {() => Promise<X25519Pair>} x25519
 * @property {(publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array) => Promise<boolean>} ed25519Verify
 * @property {(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array) => Promise<Uint8Array>} seal ChaCha20-Poly1305
 * @property {(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array) => Promise<Uint8Array>} open ChaCha20-Poly1305; throws on a bad tag
 */

const enc = new TextEncoder();

/**
 * A byte array as WebCrypto's types want it (their BufferSource excludes
 * SharedArrayBuffer-backed views; ours never are).
 * @param {Uint8Array} x
 * @returns {Uint8Array<ArrayBuffer>}
 */
const bs = (x) => /** @type {Uint8Array<ArrayBuffer>} */ (x);
/** `raw-secret`, the key format of the modern algorithms, not yet in TypeScript's DOM types. */
const RAW_SECRET = /** @type {'raw'} */ (/** @type {unknown} */ ('raw-secret'));

/** @param {string} hex */
function unhex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Equality of two byte arrays without an early exit (JavaScript promises no
 * constant time, but this leaks no more than the lengths).
 * @param {Uint8Array} a @param {Uint8Array} b
 */
export function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** @param {Uint8Array[]} parts */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// RFC 8032 section 7.1, test 1.
const ED25519_KAT = {
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};
// RFC 7748 section 6.1: Alice's private key, Bob's public key, their shared secret.
const X25519_KAT = {
  alicePrivate: '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
  bobPublic: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
  shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
};
// RFC 8439 section 2.8.2.
const CHACHA_KAT = {
  key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
  nonce: '070000004041424344454647',
  aad: '50515253c0c1c2c3c4c5c6c7',
  plaintext: "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  // The first 16 bytes of the ciphertext and the tag.
  head: 'd31a8d34648e60db7b86afbc53ef7ec2',
  tag: '1ae10b594f09e26a7e902ecbd0600691',
};

/**
 * The subtle crypto object, or null (an insecure context has none).
 * @returns {SubtleCrypto | null}
 */
function subtleOrNull() {
  const c = globalThis.crypto;
  return c && c.subtle && typeof c.subtle.importKey === 'function' ? c.subtle : null;
}

/** @param {SubtleCrypto} subtle */
async function probeEd25519(subtle) {
  const key = await subtle.importKey('raw', unhex(ED25519_KAT.publicKey), { name: 'Ed25519' }, false, ['verify']);
  const good = await subtle.verify({ name: 'Ed25519' }, key, unhex(ED25519_KAT.signature), new Uint8Array(0));
  const bad = unhex(ED25519_KAT.signature);
  bad[0] ^= 1;
  const forged = await subtle.verify({ name: 'Ed25519' }, key, bad, new Uint8Array(0));
  return good === true && forged === false;
}

/**
 * X25519 through WebCrypto: a PKCS#8 import of a known private key is not
 * possible from raw bytes, so the probe checks generate → export → derive
 * against itself and against the RFC's public key, then checks that the
 * agreement of a fresh pair with Bob's key is what the noble packages compute for it.
 * @param {SubtleCrypto} subtle
 */
async function probeX25519(subtle) {
  const pair = /** @type {CryptoKeyPair} */ (await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']));
  const bob = await subtle.importKey('raw', unhex(X25519_KAT.bobPublic), { name: 'X25519' }, false, []);
  const ours = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: bob }, pair.privateKey, 256));
  const jwk = await subtle.exportKey('jwk', pair.privateKey);
  if (typeof jwk.d !== 'string') return false;
  const d = Uint8Array.from(atob(jwk.d.replace(/-/g, '+').replace(/_/g, '/')), (ch) => ch.charCodeAt(0));
  const theirs = x25519.getSharedSecret(d, unhex(X25519_KAT.bobPublic));
  // And the RFC's own answer, through @noble, so a broken fallback is caught too.
  const rfc = x25519.getSharedSecret(unhex(X25519_KAT.alicePrivate), unhex(X25519_KAT.bobPublic));
  return equal(ours, theirs) && equal(rfc, unhex(X25519_KAT.shared));
}

/** @param {SubtleCrypto} subtle */
async function probeChaCha(subtle) {
  const key = await subtle.importKey(RAW_SECRET, unhex(CHACHA_KAT.key), { name: 'ChaCha20-Poly1305' }, false, [
    'encrypt',
    'decrypt',
  ]);
  const pt = enc.encode(CHACHA_KAT.plaintext);
  const ct = new Uint8Array(
    await subtle.encrypt(
      { name: 'ChaCha20-Poly1305', iv: unhex(CHACHA_KAT.nonce), additionalData: unhex(CHACHA_KAT.aad) },
      key,
      pt,
    ),
  );
  return equal(ct.subarray(0, 16), unhex(CHACHA_KAT.head)) && equal(ct.subarray(ct.length - 16), unhex(CHACHA_KAT.tag));
}

/**
 * Runs `probe`, answering false for any exception (an unknown algorithm is a
 * NotSupportedError, a missing key format a SyntaxError or TypeError).
 * @param {() => Promise<boolean>} probe
 */
async function works(probe) {
  try {
    return (await probe()) === true;
  } catch {
    return false;
  }
}

/** @type {Map<string, Promise<Primitives>>} */
const cache = new Map();

/**
 * The primitives for this browser: WebCrypto where it has and passes each one,
 * the noble packages elsewhere. With `{ webcrypto: false }`, the noble packages for all of them.
 * The answer is computed once per setting and shared.
 * @param {{ webcrypto?: boolean }} [options]
 * @returns {Promise<Primitives>}
 */
export function primitives(options = {}) {
  const useWebCrypto = options.webcrypto !== false;
  const key = useWebCrypto ? 'auto' : 'noble';
  let p = cache.get(key);
  if (!p) {
    p = build(useWebCrypto ? subtleOrNull() : null);
    cache.set(key, p);
  }
  return p;
}

/**
 * @param {SubtleCrypto | null} subtle
 * @returns {Promise<Primitives>}
 */
async function build(subtle) {
  const has = subtle !== null;
  const [ed, xdh, aead] = has
    ? await Promise.all([works(() => probeEd25519(subtle)), works(() => probeX25519(subtle)), works(() => probeChaCha(subtle))])
    : [false, false, false];
  /** @type {Engines} */
  const engines = {
    sha256: has ? 'webcrypto' : 'noble',
    hmac: has ? 'webcrypto' : 'noble',
    pbkdf2: has ? 'webcrypto' : 'noble',
    hkdf: has ? 'webcrypto' : 'noble',
    x25519: xdh ? 'webcrypto' : 'noble',
    ed25519: ed ? 'webcrypto' : 'noble',
    chacha20poly1305: aead ? 'webcrypto' : 'noble',
  };
  const s = /** @type {SubtleCrypto} */ (subtle);

  /** @type {Primitives['sha256']} */
  const sha256 = has
    ? async (data) => new Uint8Array(await s.digest('SHA-256', bs(data)))
    : async (data) => nobleSha256(data);

  /** @type {Primitives['hmac']} */
  const hmac = has
    ? async (key, ...parts) => {
        const k = await s.importKey('raw', bs(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
        return new Uint8Array(await s.sign('HMAC', k, bs(concat(...parts))));
      }
    : async (key, ...parts) => nobleHmac(nobleSha256, key, concat(...parts));

  /** @type {Primitives['hmacKeyed']} */
  const hmacKeyed = has
    ? (key) => {
        // importKey copies the bytes before it returns.
        const k = s.importKey('raw', bs(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
        return async (...parts) => new Uint8Array(await s.sign('HMAC', await k, bs(concat(...parts))));
      }
    : (key) =>
        async (...parts) =>
          nobleHmac(nobleSha256, key, concat(...parts));

  /** @type {Primitives['pbkdf2']} */
  const pbkdf2 = has
    ? async (password, salt, iterations) => {
        const k = await s.importKey('raw', bs(password), 'PBKDF2', false, ['deriveBits']);
        return new Uint8Array(await s.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: bs(salt), iterations }, k, 256));
      }
    : (password, salt, iterations) => pbkdf2Async(nobleSha256, password, salt, { c: iterations, dkLen: 32 });

  /** @type {Primitives['hkdf']} */
  const hkdf = has
    ? async (ikm, salt, info, length) => {
        const k = await s.importKey('raw', bs(ikm), 'HKDF', false, ['deriveBits']);
        return new Uint8Array(await s.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: bs(salt), info: bs(info) }, k, length * 8));
      }
    : async (ikm, salt, info, length) => hkdfExpand(nobleSha256, hkdfExtract(nobleSha256, ikm, salt), info, length);

  /** @type {Primitives['x25519']} */
  const x25519Pair = xdh
    ? async () => {
        const pair = /** @type {CryptoKeyPair} */ (await s.generateKey({ name: 'X25519' }, false, ['deriveBits']));
        const publicKey = new Uint8Array(await s.exportKey('raw', pair.publicKey));
        return {
          publicKey,
          agree: async (peer) => {
            const k = await s.importKey('raw', bs(peer), { name: 'X25519' }, false, []);
            return new Uint8Array(await s.deriveBits({ name: 'X25519', public: k }, pair.privateKey, 256));
          },
        };
      }
    : async () => {
        const secret = x25519.utils.randomSecretKey();
        const publicKey = x25519.getPublicKey(secret);
        return {
          publicKey,
          agree: async (peer) => {
            try {
              return x25519.getSharedSecret(secret, peer);
            } finally {
              secret.fill(0);
            }
          },
        };
      };

  /** @type {Primitives['ed25519Verify']} */
  const ed25519Verify = ed
    ? async (publicKey, signature, message) => {
        const k = await s.importKey('raw', bs(publicKey), { name: 'Ed25519' }, false, ['verify']);
        return s.verify({ name: 'Ed25519' }, k, bs(signature), bs(message));
      }
    : async (publicKey, signature, message) => {
        try {
          return ed25519.verify(signature, message, publicKey, { zip215: false });
        } catch {
          return false;
        }
      };

  /** @param {Uint8Array} key @param {KeyUsage} use */
  const aeadKey = (key, use) => s.importKey(RAW_SECRET, bs(key), { name: 'ChaCha20-Poly1305' }, false, [use]);

  /** @type {Primitives['seal']} */
  const seal = aead
    ? async (key, nonce, aad, plaintext) =>
        new Uint8Array(
          await s.encrypt({ name: 'ChaCha20-Poly1305', iv: bs(nonce), additionalData: bs(aad) }, await aeadKey(key, 'encrypt'), bs(plaintext)),
        )
    : async (key, nonce, aad, plaintext) => chacha20poly1305(key, nonce, aad).encrypt(plaintext);

  /** @type {Primitives['open']} */
  const open = aead
    ? async (key, nonce, aad, ciphertext) =>
        new Uint8Array(
          await s.decrypt({ name: 'ChaCha20-Poly1305', iv: bs(nonce), additionalData: bs(aad) }, await aeadKey(key, 'decrypt'), bs(ciphertext)),
        )
    : async (key, nonce, aad, ciphertext) => chacha20poly1305(key, nonce, aad).decrypt(ciphertext);

  return Object.freeze({
    engines: Object.freeze(engines),
    sha256,
    hmac,
    hmacKeyed,
    pbkdf2,
    hkdf,
    x25519: x25519Pair,
    ed25519Verify,
    seal,
    open,
  });
}

/**
 * `n` random bytes from the browser's CSPRNG (available in every context).
 * @param {number} n
 */
export function randomBytes(n) {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}
