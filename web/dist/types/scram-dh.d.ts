import { saslprep } from './saslprep.js';
export { saslprep };
/** The wire format version this module speaks. */
export declare const PROTOCOL = "scram-dh/1";
/** The iteration count a client accepts at most unless told otherwise (as the CLI). */
export declare const DEFAULT_MAX_ITERATIONS = 1000000;
/** SPEC 2: never below this. */
export declare const MIN_ITERATIONS = 4096;
/** The localStorage key under which host-key pins are kept. */
export declare const PIN_STORAGE_KEY = "scram-dh.known-hosts";
/**
 * A refusal or failure, with the SPEC error code when the server gave one
 * (`authentication_failed`, `username_taken`, `busy`, …) or one of this
 * module's own: `host_key_changed`, `host_key_signature`, `server_signature`,
 * `response_mac`, `redirect`, `iteration_count`, `invalid_public_key`,
 * `invalid_message` (the server's reply is malformed), `invalid_username`,
 * `invalid_password`, `unsupported`, `network`, `http_status`.
 */
export declare class ScramDhError extends Error {
    /** @type {string} */
    code: string;
    /** @type {number | undefined} */
    status: number | undefined;
    /** @type {boolean} */
    verified: boolean;
    /** @type {number | undefined} */
    retryAfter: number | undefined;
    /**
     * @param {string} code
     * @param {string} message
     * @param {{ status?: number, verified?: boolean, retryAfter?: number }} [details]
     *   `status`: the HTTP status; `verified`: false when the code comes from a
     *   response whose MAC did not verify (it may be forged); `retryAfter`: seconds
     */
    constructor(code: string, message: string, details?: {
        status?: number;
        verified?: boolean;
        retryAfter?: number;
    });
}
/**
 * The fingerprint of a 32-byte Ed25519 host key, as the CLI and OpenSSH show
 * them: `SHA256:` and the unpadded base64 of its SHA-256.
 * @param {Uint8Array} hostKey
 * @returns {Promise<string>}
 */
export declare function fingerprintOf(hostKey: Uint8Array): Promise<string>;
export type PinStore = {
    get: (server: string) => (string | null | Promise<string | null>);
    set: (server: string, fingerprint: string) => (void | Promise<void>);
};
/**
 * Where host-key pins live: `get` answers the pinned fingerprint of a server
 * or null, `set` records one. Either may return a promise.
 * @typedef {object} PinStore
 * @property {(server: string) => (string | null | Promise<string | null>)} get
 * @property {(server: string, fingerprint: string) => (void | Promise<void>)} set
 */
/** @returns {PinStore} pins in localStorage when the page has it, else in memory */
export declare function defaultPinStore(): PinStore;
export type FetchLike = (input: URL, init: RequestInit) => Promise<Response>;
export type ClientOptions = {
    /**
     * the server (default: the page's origin)
     */
    baseUrl?: string;
    /**
     * pin the host key to this `SHA256:…`
     * fingerprint instead of trusting it on first use
     */
    fingerprint?: string;
    /**
     * where trust-on-first-use pins live (default: localStorage)
     */
    pinStore?: PinStore;
    /**
     * refuse iteration counts above this (default 1,000,000)
     */
    maxIterations?: number;
    /**
     * each HTTP exchange, at most (default 15,000)
     */
    timeoutMs?: number;
    /**
     * false: use the noble packages for every primitive
     */
    webcrypto?: boolean;
    /**
     * the fetch to use (default: the global one)
     */
    fetch?: FetchLike;
};
export type Registration = {
    /**
     * the SASLprep-normalised username
     */
    username: string;
    labels: 'rfc' | 'random';
    /**
     * the server's host-key fingerprint, now pinned
     */
    fingerprint: string;
    /**
     * with `random` labels: the keys
     * only this client holds (keep them secret); undefined with `rfc` labels,
     * where the password alone logs in
     */
    credential: Credential | undefined;
};
export type Credential = {
    username: string;
    clientKey: Uint8Array;
    serverKey: Uint8Array;
};
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
export declare class ScramDhClient {
    #private;
    /** @param {ClientOptions} [options] */
    constructor(options?: ClientOptions);
    /** The name pins are kept under: the server's origin. */
    get server(): string;
    /** Which engine serves each primitive here. @returns {Promise<import('./crypto.js').Engines>} */
    engines(): Promise<import('./crypto.js').Engines>;
    /** The fingerprint pinned for this server, or null. @returns {Promise<string | null>} */
    pinnedFingerprint(): Promise<string | null>;
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
    register(username: string, password: string, options?: {
        labels?: 'rfc' | 'random';
        group?: 'x25519';
    }): Promise<Registration>;
    /**
     * Authenticates (SPEC 4) over X25519 channel keys and opens an HTTP session.
     * `secret` is the password (records with RFC labels) or the credential a
     * `random`-labels registration returned.
     * @param {string} username
     * @param {string | Credential} secret
     * @returns {Promise<ScramDhSession>}
     * @throws {ScramDhError} `authentication_failed`, `server_signature`, `busy`, …
     */
    login(username: string, secret: string | Credential): Promise<ScramDhSession>;
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
    rfc7804Fetch(path: string, request: {
        username: string;
        password: string;
        method?: string;
        body?: string | Uint8Array;
        headers?: HeadersInit;
    }): Promise<Response>;
}
/**
 * A logged-in HTTP session (SPEC 7, "After authentication"): `fetch` signs
 * each request with `k_c2s` and checks each response's `Scram-DH-Mac` with
 * `k_s2c`. The keys live in private fields and are never stored; `forget`
 * wipes them. After `logout` the server has forgotten the session, so any
 * later request is refused there (`unknown_session`) — the keys are worth
 * nothing by then, and the application sees the server's own answer.
 */
export declare class ScramDhSession {
    #private;
    /** The SASLprep-normalised username the server authenticated. */
    username: string;
    /**
     * Made by `ScramDhClient.login`.
     * @param {URL} base @param {string} username @param {string} sid
     * @param {Uint8Array} kc2s @param {Uint8Array} ks2c
     * @param {import('./crypto.js').Primitives} p
     * @param {(path: string, init: RequestInit) => Promise<Response>} send
     */
    constructor(base: URL, username: string, sid: string, kc2s: Uint8Array, ks2c: Uint8Array, p: import('./crypto.js').Primitives, send: (path: string, init: RequestInit) => Promise<Response>);
    /** Whether `forget` ended this session here. */
    get ended(): boolean;
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
    fetch(input: string | URL, init?: RequestInit): Promise<Response>;
    /**
     * `GET /v1/whoami`: the username the server holds for this session.
     * @returns {Promise<string>}
     */
    whoami(): Promise<string>;
    /**
     * `POST /v1/logout`: the server ends the session (on every node sharing its
     * session store); later requests on it are refused there.
     */
    logout(): Promise<void>;
    /** Forgets the session here without telling the server (it expires there). */
    forget(): void;
    /** Keeps the session id and keys out of logs and JSON. */
    toJSON(): {
        username: string;
        ended: boolean;
    };
}
