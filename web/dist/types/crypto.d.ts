export type EngineName = 'webcrypto' | 'noble';
export type Engines = {
    sha256: EngineName;
    hmac: EngineName;
    pbkdf2: EngineName;
    hkdf: EngineName;
    x25519: EngineName;
    ed25519: EngineName;
    chacha20poly1305: EngineName;
};
export type X25519Pair = {
    /**
     * 32 bytes
     */
    publicKey: Uint8Array;
    /**
     * the 32-byte shared secret with `peer`
     */
    agree: (peer: Uint8Array) => Promise<Uint8Array>;
};
export type Primitives = {
    engines: Engines;
    sha256: (data: Uint8Array) => Promise<Uint8Array>;
    /**
     * HMAC-SHA-256 over the parts concatenated
     */
    hmac: (key: Uint8Array, ...parts: Uint8Array[]) => Promise<Uint8Array>;
    /**
     * HMAC-SHA-256
     * under one key used many times (a session's): WebCrypto imports it once, not extractable;
     * the noble packages read `key` itself at each call, so wiping it disables them
     */
    hmacKeyed: (key: Uint8Array) => (...parts: Uint8Array[]) => Promise<Uint8Array>;
    /**
     * PBKDF2-HMAC-SHA-256, 32 bytes
     */
    pbkdf2: (password: Uint8Array, salt: Uint8Array, iterations: number) => Promise<Uint8Array>;
    /**
     * HKDF-SHA-256 (extract, then expand)
     */
    hkdf: (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number) => Promise<Uint8Array>;
    x25519: () => Promise<X25519Pair>;
    ed25519Verify: (publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array) => Promise<boolean>;
    /**
     * ChaCha20-Poly1305
     */
    seal: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array) => Promise<Uint8Array>;
    /**
     * ChaCha20-Poly1305; throws on a bad tag
     */
    open: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array) => Promise<Uint8Array>;
};
/**
 * Equality of two byte arrays without an early exit (JavaScript promises no
 * constant time, but this leaks no more than the lengths).
 * @param {Uint8Array} a @param {Uint8Array} b
 */
export declare function equal(a: Uint8Array, b: Uint8Array): boolean;
/** @param {Uint8Array[]} parts */
export declare function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer>;
/**
 * The primitives for this browser: WebCrypto where it has and passes each one,
 * the noble packages elsewhere. With `{ webcrypto: false }`, the noble packages for all of them.
 * The answer is computed once per setting and shared.
 * @param {{ webcrypto?: boolean }} [options]
 * @returns {Promise<Primitives>}
 */
export declare function primitives(options?: {
    webcrypto?: boolean;
}): Promise<Primitives>;
/**
 * `n` random bytes from the browser's CSPRNG (available in every context).
 * @param {number} n
 */
export declare function randomBytes(n: number): Uint8Array<ArrayBuffer>;
