#!/usr/bin/env python3
"""Independent scram-dh wire-protocol v1 client, written from /work/shared/SPEC.md
(sections 3a, 4, 7) and the "Protocol notes" of README.md only, to test a server for
byte-exactness.

Usage: spec_client.py --server HOST:PORT [--fingerprint SHA256:...]

Every check prints one line ("PASS name" or "FAIL name: detail"); the last line is
"N passed, M failed". Exit status 0 only if nothing failed.

Scope and simplifications (documented on purpose):
- Usernames and passwords are ASCII only. For printable ASCII, SASLprep (RFC 4013) is
  the identity, so this client does not implement SASLprep; it refuses non-ASCII input.
  One username deliberately contains ',' and '=' to exercise RFC 5802 saslname
  escaping in AuthMessage (SASLprep leaves both unchanged).
- Only modp2048 (RFC 3526 group 14, g = 2) and x25519 are implemented.
- The TCP front only (line-framed handshake, then length-prefixed AEAD records).

Dependencies: Python 3.11 standard library + `cryptography` (X25519, Ed25519,
ChaCha20-Poly1305). HMAC, HKDF and PBKDF2 use hashlib/hmac.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import secrets
import socket
import struct
import sys
import traceback

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

# --------------------------------------------------------------------------- checks

RESULTS: list[tuple[str, bool, str]] = []


class Abort(Exception):
    """A required check failed; the current flow cannot continue."""


def check(name: str, ok: bool, detail: str = "") -> bool:
    RESULTS.append((name, bool(ok), detail))
    if ok:
        print(f"PASS {name}", flush=True)
    else:
        print(f"FAIL {name}: {detail}", flush=True)
    return bool(ok)


def require(name: str, ok: bool, detail: str = "") -> None:
    if not check(name, ok, detail):
        raise Abort(name)


def info(text: str) -> None:
    print(f"INFO {text}", flush=True)


def run_flow(name: str, fn, *args, **kwargs):
    """Run one scenario; an unexpected exception or a failed `require` is a failure."""
    try:
        return fn(*args, **kwargs)
    except Abort:
        return None
    except ServerError as e:
        check(f"{name}: no unexpected server error", False,
              f"server replied {e.line!r}")
        return None
    except Exception as e:  # noqa: BLE001 - any crash is a failed check
        check(f"{name}: completed without exception", False,
              f"{type(e).__name__}: {e} | {traceback.format_exc(limit=3).strip().splitlines()[-1]}")
        return None


# --------------------------------------------------------------------------- encodings

def b64e(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def b64d_strict(s) -> bytes:
    """Standard alphabet, padded, canonical; raises ValueError otherwise."""
    if not isinstance(s, str):
        raise ValueError(f"not a string: {s!r}")
    b = base64.b64decode(s.encode("ascii"), validate=True)
    if b64e(b) != s:
        raise ValueError(f"non-canonical base64: {s!r}")
    return b


def lp(x) -> bytes:
    if isinstance(x, str):
        x = x.encode("utf-8")
    return struct.pack(">I", len(x)) + x


def n_nonce(i: int) -> bytes:
    """n(i): 4 zero bytes then i as u64 big-endian."""
    return b"\x00" * 4 + struct.pack(">Q", i)


def hmac256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac256(salt, ikm)


def hkdf_expand32(prk: bytes, info_: bytes) -> bytes:
    # L = 32 = one SHA-256 block: T(1) = HMAC(PRK, info || 0x01)
    return hmac256(prk, info_ + b"\x01")


def hkdf_expand(prk: bytes, info_: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-Expand: T(i) = HMAC(PRK, T(i-1) || info || i)."""
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac256(prk, t + info_ + bytes([i]))
        out += t
        i += 1
    return out[:length]


def derived_labels(prk: bytes, labels: str) -> tuple[bytes, bytes]:
    """SPEC 7: the labels both sides know before R3."""
    if labels == "rfc":
        return b"Client Key", b"Server Key"
    okm = hkdf_expand(prk, b"scram-dh/1 labels", 64)
    return okm[:32], okm[32:]


def xor(a: bytes, b: bytes) -> bytes:
    assert len(a) == len(b)
    return bytes(x ^ y for x, y in zip(a, b))


def encode_msg(obj: dict) -> bytes:
    """Compact JSON, fields in insertion order (= SPEC table order)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_nonce() -> str:
    return secrets.token_bytes(32).hex()


HEX64 = re.compile(r"^[0-9a-f]{64}$")


def saslname(u: str) -> str:
    return u.replace("=", "=3D").replace(",", "=2C")


def fingerprint(host_key: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(host_key).digest()).decode().rstrip("=")


def salted_password(password: str, salt: bytes, ic: int) -> bytes:
    # SASLprep(password) is the identity for printable ASCII (see module docstring).
    if not password.isascii() or not password.isprintable():
        raise ValueError("this client handles printable ASCII passwords only")
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, ic, 32)


# --------------------------------------------------------------------------- DH groups

MODP2048_P = int("".join("""
FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
15728E5A 8AACAA68 FFFFFFFF FFFFFFFF""".split()), 16)


class X25519Group:
    name = "x25519"
    size = 32

    def keypair(self):
        sk = X25519PrivateKey.generate()
        return sk, sk.public_key().public_bytes_raw()

    def check_peer(self, pk: bytes) -> str | None:
        if len(pk) != 32:
            return f"x25519 public key is {len(pk)} bytes, want 32"
        return None

    def shared(self, sk, peer: bytes) -> bytes:
        err = self.check_peer(peer)
        if err:
            raise ValueError(err)
        try:
            z = sk.exchange(X25519PublicKey.from_public_bytes(peer))
        except ValueError as e:  # cryptography refuses an all-zero result itself
            raise ValueError(f"x25519 all-zero shared secret ({e})") from e
        if z == bytes(32):
            raise ValueError("x25519 all-zero shared secret")
        return z

    @staticmethod
    def pk_one() -> bytes:
        return b"\x01" + bytes(31)  # u = 1 (little-endian), a low-order point


class ModpGroup:
    def __init__(self, name: str, p: int):
        self.name = name
        self.p = p
        self.size = (p.bit_length() + 7) // 8

    def keypair(self):
        while True:
            x = secrets.randbits(256)  # 256 random bits (SPEC 2)
            if x >= 2:
                break
        y = pow(2, x, self.p)
        return x, y.to_bytes(self.size, "big")

    def check_peer(self, pk: bytes) -> str | None:
        if len(pk) != self.size:
            return f"{self.name} public key is {len(pk)} bytes, want {self.size}"
        y = int.from_bytes(pk, "big")
        if not (2 <= y <= self.p - 2):
            return f"{self.name} public key outside [2, p-2]"
        # safe prime: prime-order subgroup == quadratic residues: y^((p-1)/2) == 1
        if pow(y, (self.p - 1) // 2, self.p) != 1:
            return f"{self.name} public key not in the prime-order subgroup"
        return None

    def shared(self, x: int, peer: bytes) -> bytes:
        err = self.check_peer(peer)
        if err:
            raise ValueError(err)
        z = pow(int.from_bytes(peer, "big"), x, self.p)
        return z.to_bytes(self.size, "big")  # left-padded big-endian (SPEC 7)

    def encode_int(self, v: int) -> bytes:
        return v.to_bytes(self.size, "big")


GROUPS = {"x25519": X25519Group(), "modp2048": ModpGroup("modp2048", MODP2048_P)}

# --------------------------------------------------------------------------- wire

FIELDS = {
    "registration_pairing": ["type", "salt", "ic", "public_key", "nonce", "host_key", "signature"],
    "registration_keys_generation": ["type", "secret_client_key", "secret_server_key", "nonce"],
    "auth_pairing": ["type", "salt", "ic", "nonce"],  # + "public_key" iff A1 had one
    "auth_proof": ["type", "server_signature"],
    "error": ["type", "code", "message"],
}


class ServerError(Exception):
    def __init__(self, code: str, message: str, line: bytes):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.line = line


class EOFErr(Exception):
    pass


def parse_obj(line: bytes):
    pairs_holder = []

    def hook(pairs):
        pairs_holder.append(pairs)
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate keys in {keys}")
        return dict(pairs)

    obj = json.loads(line.decode("utf-8"), object_pairs_hook=hook)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    keys = [k for k, _ in pairs_holder[-1]]
    return obj, keys


class Conn:
    def __init__(self, addr, timeout: float = 20.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.buf = b""
        self.last_line = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_obj(self, obj: dict) -> bytes:
        data = encode_msg(obj)
        self.sock.sendall(data + b"\n")
        return data

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFErr("connection closed by server")
        self.buf += chunk

    def recv_line(self) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > 64 * 1024:
                raise ValueError("server line longer than 64 KiB")
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        self.last_line = line
        return line

    def recv_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def wait_eof(self, timeout: float = 5.0) -> tuple[bool, bytes]:
        """True if the server closes (EOF or reset) within timeout; returns stray bytes."""
        self.sock.settimeout(timeout)
        stray = self.buf
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True, stray
                stray += chunk
        except socket.timeout:
            return False, stray
        except (ConnectionResetError, BrokenPipeError):
            return True, stray

    def recv_msg(self, label: str, expect_type: str, fields: list[str]):
        """Receive one server message; checks shape; raises ServerError on an error object."""
        line = self.recv_line()
        obj, keys = parse_obj(line)
        if obj.get("type") == "error":
            check_error_shape(f"{label} error object", line)
            raise ServerError(str(obj.get("code")), str(obj.get("message")), line)
        require(f"{label}: type is {expect_type!r}", obj.get("type") == expect_type,
                f"got {line!r}")
        require(f"{label}: exactly fields {fields}", sorted(keys) == sorted(fields),
                f"got {keys}")
        check(f"{label}: field order as in SPEC table", keys == fields, f"got {keys}")
        check(f"{label}: compact JSON encoding", encode_msg(obj) == line,
              f"received {line!r}")
        return obj

    def recv_error(self, label: str) -> tuple[str, str, bytes]:
        line = self.recv_line()
        check_error_shape(f"{label} error object", line)
        obj, _ = parse_obj(line)
        return str(obj.get("code")), str(obj.get("message")), line


def check_error_shape(label: str, line: bytes) -> None:
    try:
        obj, keys = parse_obj(line)
    except Exception as e:  # noqa: BLE001
        check(f"{label}: valid JSON", False, f"{e}: {line!r}")
        return
    ok = (keys == FIELDS["error"] and obj["type"] == "error"
          and isinstance(obj["code"], str) and isinstance(obj["message"], str)
          and encode_msg(obj) == line)
    check(f"{label}: exactly {{type,code,message}} in order, compact", ok, f"got {line!r}")


def check_combined_nonce(label: str, client_nonce: str, nonce) -> None:
    ok = (isinstance(nonce, str) and nonce.startswith(client_nonce + "-")
          and bool(HEX64.match(nonce[len(client_nonce) + 1:])))
    require(f"{label}: nonce = client_nonce + '-' + 64 lowercase hex", ok, f"got {nonce!r}")


def get_b64(label: str, obj: dict, field: str, size: int | None = None, min_size: int = 0) -> bytes:
    try:
        b = b64d_strict(obj[field])
    except Exception as e:  # noqa: BLE001
        require(f"{label}: {field} is standard padded base64", False, str(e))
        raise
    if size is not None:
        require(f"{label}: {field} is {size} bytes", len(b) == size,
                f"got {len(b)} bytes: {field}={obj[field]!r}")
    elif min_size:
        require(f"{label}: {field} is at least {min_size} bytes", len(b) >= min_size,
                f"got {len(b)} bytes")
    return b


def get_ic(label: str, obj: dict) -> int:
    ic = obj["ic"]
    require(f"{label}: ic is a JSON integer >= 4096", type(ic) is int and ic >= 4096, f"got {ic!r}")
    require(f"{label}: ic <= client ceiling 1000000", ic <= 1_000_000, f"got {ic}")
    return ic


# --------------------------------------------------------------------------- registration

class Credential:
    def __init__(self, username, password, labels, salt, ic, client_key, server_key, host_key):
        self.username = username
        self.password = password
        self.labels = labels
        self.salt = salt
        self.ic = ic
        self.client_key = client_key
        self.server_key = server_key
        self.host_key = host_key

    @property
    def stored_key(self) -> bytes:
        return hashlib.sha256(self.client_key).digest()


class Ctx:
    def __init__(self, addr, fp):
        self.addr = addr
        self.fp = fp
        self.host_key: bytes | None = None
        self.server_ic: int | None = None
        self.last_reg: dict = {}


def registration_transcript(username, group, cpk, cnonce, labels, salt, ic, spk, nonce, host_key) -> bytes:
    return (lp("scram-dh/1 registration") + lp(username) + lp(group) + lp(cpk) + lp(cnonce)
            + lp(labels) + lp(salt) + struct.pack(">I", ic) + lp(spk) + lp(nonce) + lp(host_key))


def register(ctx: Ctx, username: str, password: str, group_name: str, labels: str,
             conn: Conn | None = None) -> Credential:
    assert username.isascii() and username.isprintable()
    tag = f"register {group_name}/{labels}"
    g = GROUPS[group_name]
    own = conn is None
    conn = conn or Conn(ctx.addr)
    try:
        sk, cpk = g.keypair()
        cnonce = new_nonce()
        r1 = {"type": "registration_pairing", "username": username, "group": group_name,
              "public_key": b64e(cpk), "client_nonce": cnonce, "labels": labels}
        conn.send_obj(r1)
        try:
            r2 = conn.recv_msg(f"{tag} R2", "registration_pairing", FIELDS["registration_pairing"])
        except ServerError as e:
            require(f"{tag} R2: server accepted R1", False, f"server replied {e.line!r}")
            raise
        salt = get_b64(f"{tag} R2", r2, "salt", 32)
        ic = get_ic(f"{tag} R2", r2)
        spk = get_b64(f"{tag} R2", r2, "public_key", g.size)
        err = g.check_peer(spk)
        require(f"{tag} R2: server public key passes range/subgroup checks", err is None, str(err))
        nonce = r2["nonce"]
        check_combined_nonce(f"{tag} R2", cnonce, nonce)
        host_key = get_b64(f"{tag} R2", r2, "host_key", 32)
        sig = get_b64(f"{tag} R2", r2, "signature", 64)
        if ctx.fp:
            require(f"{tag} R2: host_key matches pinned fingerprint", fingerprint(host_key) == ctx.fp,
                    f"{fingerprint(host_key)} != {ctx.fp}")
        if ctx.host_key is not None:
            check(f"{tag} R2: host_key stable across connections", host_key == ctx.host_key,
                  "host key changed")
        ctx.host_key = host_key
        T = registration_transcript(username, group_name, cpk, cnonce, labels, salt, ic, spk,
                                    nonce, host_key)
        h = hashlib.sha256(T).digest()
        try:
            Ed25519PublicKey.from_public_bytes(host_key).verify(sig, h)
            sig_ok, sig_err = True, ""
        except InvalidSignature:
            sig_ok, sig_err = False, f"signature {r2['signature']} does not verify over h={h.hex()}"
        require(f"{tag} R2: Ed25519 signature over h = SHA-256(T) verifies", sig_ok, sig_err)
        try:
            Z = g.shared(sk, spk)
        except ValueError as e:
            require(f"{tag}: shared secret acceptable", False, str(e))
            raise
        prk = hkdf_extract(h, Z)
        k_c2s = hkdf_expand32(prk, b"scram-dh/1 registration c2s")
        k_s2c = hkdf_expand32(prk, b"scram-dh/1 registration s2c")
        # Known before R3: a client that loses R4 can still log in (SPEC 7).
        want_client_label, want_server_label = derived_labels(prk, labels)
        sp = salted_password(password, salt, ic)
        secret_key = ChaCha20Poly1305(k_c2s).encrypt(n_nonce(0), sp, h)
        assert len(secret_key) == 48
        r3 = {"type": "registration_send_password", "secret_key": b64e(secret_key), "nonce": nonce}
        ctx.last_reg = {"r3": r3}
        conn.send_obj(r3)
        try:
            r4 = conn.recv_msg(f"{tag} R4", "registration_keys_generation",
                               FIELDS["registration_keys_generation"])
        except ServerError as e:
            require(f"{tag} R4: server accepted R3", False, f"server replied {e.line!r}")
            raise
        label_len = 32 if labels == "random" else 10
        ecl = get_b64(f"{tag} R4", r4, "secret_client_key", label_len + 16)
        esl = get_b64(f"{tag} R4", r4, "secret_server_key", label_len + 16)
        require(f"{tag} R4: nonce echoes combined nonce", r4["nonce"] == nonce,
                f"got {r4['nonce']!r}")
        aead = ChaCha20Poly1305(k_s2c)
        try:
            client_label = aead.decrypt(n_nonce(0), ecl, h)
            server_label = aead.decrypt(n_nonce(1), esl, h)
            dec_ok, dec_err = True, ""
        except InvalidTag:
            dec_ok, dec_err = False, "AEAD(k_s2c, n(0)/n(1), aad h) does not open"
        require(f"{tag} R4: labels decrypt with k_s2c, n(0)/n(1), aad h", dec_ok, dec_err)
        if labels == "rfc":
            require(f"{tag} R4: RFC labels are 'Client Key'/'Server Key'",
                    hmac.compare_digest(client_label, want_client_label)
                    and hmac.compare_digest(server_label, want_server_label),
                    f"got {client_label!r} / {server_label!r}")
        else:
            require(f"{tag} R4: random labels are HKDF-Expand(PRK, 'scram-dh/1 labels', 64)",
                    hmac.compare_digest(client_label, want_client_label)
                    and hmac.compare_digest(server_label, want_server_label),
                    "labels differ from the derived ones")
        client_key = hmac256(sp, client_label)
        server_key = hmac256(sp, server_label)
        ctx.server_ic = ic
        return Credential(username, password, labels, salt, ic, client_key, server_key, host_key)
    finally:
        if own:
            conn.close()


# --------------------------------------------------------------------------- authentication

class Channel:
    def __init__(self, conn: Conn, k_c2s: bytes, k_s2c: bytes):
        self.conn = conn
        self.tx = ChaCha20Poly1305(k_c2s)
        self.rx = ChaCha20Poly1305(k_s2c)
        self.seq_out = 0
        self.seq_in = 0

    def send(self, pt: bytes):
        assert len(pt) <= 16384
        ct = self.tx.encrypt(n_nonce(self.seq_out), pt, b"")
        self.seq_out += 1
        self.conn.send_raw(struct.pack(">I", len(ct)) + ct)

    def recv(self) -> bytes:
        (length,) = struct.unpack(">I", self.conn.recv_exact(4))
        if length > 16384 + 16:
            raise ValueError(f"record length {length} > 16384 + 16")
        ct = self.conn.recv_exact(length)
        pt = self.rx.decrypt(n_nonce(self.seq_in), ct, b"")
        self.seq_in += 1
        return pt


def auth(ctx: Ctx, cred: Credential, channel_group: str | None, tag: str,
         conn: Conn | None = None, from_password: bool = False,
         client_key_override: bytes | None = None, expect_success: bool = True):
    """Run A1..A4. Returns (conn, channel or None, a3 message, AuthMessage)."""
    conn = conn or Conn(ctx.addr)
    cnonce = new_nonce()
    a1 = {"type": "auth_pairing", "username": cred.username, "client_nonce": cnonce}
    g = sk = cpk = None
    if channel_group:
        g = GROUPS[channel_group]
        sk, cpk = g.keypair()
        a1["group"] = channel_group
        a1["public_key"] = b64e(cpk)
    conn.send_obj(a1)
    fields = FIELDS["auth_pairing"] + (["public_key"] if channel_group else [])
    try:
        a2 = conn.recv_msg(f"{tag} A2", "auth_pairing", fields)
    except ServerError as e:
        require(f"{tag} A2: server accepted A1", False, f"server replied {e.line!r}")
        raise
    salt = get_b64(f"{tag} A2", a2, "salt", min_size=1)
    ic = get_ic(f"{tag} A2", a2)
    nonce = a2["nonce"]
    check_combined_nonce(f"{tag} A2", cnonce, nonce)
    if cred.salt is not None:
        require(f"{tag} A2: salt and ic are the registered ones", salt == cred.salt and ic == cred.ic,
                f"salt {b64e(salt)} ic {ic}, registered {b64e(cred.salt)} ic {cred.ic}")
    spk = Z = None
    if channel_group:
        spk = get_b64(f"{tag} A2", a2, "public_key", g.size)
        err = g.check_peer(spk)
        require(f"{tag} A2: server public key passes range/subgroup checks", err is None, str(err))
        try:
            Z = g.shared(sk, spk)
        except ValueError as e:
            require(f"{tag}: shared secret acceptable", False, str(e))
            raise
        gs2 = f"p=scram-dh-{channel_group},,".encode("ascii")
        cb = hashlib.sha256(lp(cpk) + lp(spk)).digest()
    else:
        gs2, cb = b"n,,", b""
    auth_message = (f"n={saslname(cred.username)},r={cnonce}"
                    + "," + f"r={nonce},s={a2['salt']},i={ic}"
                    + "," + f"c={b64e(gs2 + cb)},r={nonce}").encode("utf-8")
    if client_key_override is not None:
        client_key = client_key_override
        server_key = secrets.token_bytes(32)
    elif from_password:
        # Standard SCRAM-SHA-256 derivation from the password (RFC labels only).
        sp = salted_password(cred.password, salt, ic)
        client_key = hmac256(sp, b"Client Key")
        server_key = hmac256(sp, b"Server Key")
    else:
        client_key, server_key = cred.client_key, cred.server_key
    stored_key = hashlib.sha256(client_key).digest()
    client_sig = hmac256(stored_key, auth_message)
    proof = xor(client_key, client_sig)
    a3 = {"type": "auth_client_proof_generation", "client_proof": b64e(proof), "nonce": nonce}
    conn.send_obj(a3)
    if not expect_success:
        return conn, None, a3, auth_message
    try:
        a4 = conn.recv_msg(f"{tag} A4", "auth_proof", FIELDS["auth_proof"])
    except ServerError as e:
        require(f"{tag} A4: server accepted the proof", False, f"server replied {e.line!r}")
        raise
    ssig = get_b64(f"{tag} A4", a4, "server_signature", 32)
    require(f"{tag} A4: server_signature = HMAC(ServerKey, AuthMessage)",
            hmac.compare_digest(ssig, hmac256(server_key, auth_message)),
            f"AuthMessage={auth_message!r}")
    channel = None
    if channel_group:
        prk = hkdf_extract(hmac256(client_key, auth_message), Z)
        channel = Channel(conn, hkdf_expand32(prk, b"scram-dh/1 session c2s"),
                          hkdf_expand32(prk, b"scram-dh/1 session s2c"))
    return conn, channel, a3, auth_message


def service_exchange(ch: Channel, username: str, tag: str) -> None:
    key = "k" + secrets.token_hex(4)
    val = "v" + secrets.token_hex(4)
    cmds = [("whoami", {"cmd": "whoami", "args": []}, None),
            ("set", {"cmd": "set", "args": [key, val]}, "OK"),
            ("get", {"cmd": "get", "args": [key]}, val)]
    for name, cmd, want in cmds:
        seq = ch.seq_out
        ch.send(encode_msg(cmd))
        try:
            pt = ch.recv()
        except InvalidTag:
            require(f"{tag} channel {name} (seq {seq}): reply opens with k_s2c, n(seq), aad empty",
                    False, "AEAD tag mismatch")
            raise
        try:
            obj, _ = parse_obj(pt)
        except Exception as e:  # noqa: BLE001
            require(f"{tag} channel {name}: reply is a JSON object", False, f"{e}: {pt!r}")
            raise
        ok = obj.get("ok") is True and obj.get("user") == username
        if want is not None:
            ok = ok and obj.get("result") == want
        require(f"{tag} channel {name} (seq {seq}): ok, names the user"
                + (f", result {want!r}" if want else ""), ok, f"got {pt!r}")
        if name == "whoami":
            info(f"{tag} whoami reply: {pt.decode('utf-8', 'replace')}")


# --------------------------------------------------------------------------- scenarios

def scen_register_and_login(ctx, creds, group, labels, user):
    pw = "pw-" + secrets.token_hex(8)
    cred = register(ctx, user, pw, group, labels)
    check(f"register {group}/{labels}: completed", True)
    creds[(group, labels)] = cred
    return cred


def scen_login_nochannel(ctx, cred, tag):
    conn, _, a3, _ = auth(ctx, cred, None, tag, from_password=(cred.labels == "rfc"))
    try:
        closed, stray = conn.wait_eof(5.0)
        check(f"{tag}: server closes the connection after a channel-less login (README note 8)",
              closed and not stray, f"closed={closed} stray={stray!r}")
    finally:
        conn.close()
    return a3


def scen_login_channel(ctx, cred, group, tag, tamper_at_end=False):
    conn, ch, _, _ = auth(ctx, cred, group, tag, from_password=(cred.labels == "rfc"))
    try:
        service_exchange(ch, cred.username, tag)
        if tamper_at_end:
            ct = bytearray(ch.tx.encrypt(n_nonce(ch.seq_out), encode_msg({"cmd": "whoami", "args": []}), b""))
            ct[-1] ^= 1
            conn.send_raw(struct.pack(">I", len(ct)) + bytes(ct))
            closed, stray = conn.wait_eof(5.0)
            check(f"{tag}: a record with a bad tag closes the channel", closed and not stray,
                  f"closed={closed} stray={stray!r}")
    finally:
        conn.close()


def scen_register_then_login_same_conn(ctx, creds):
    user = "same-conn-" + secrets.token_hex(4)
    conn = Conn(ctx.addr)
    try:
        cred = register(ctx, user, "pw-" + secrets.token_hex(8), "x25519", "random", conn=conn)
        conn2, ch, _, _ = auth(ctx, cred, "x25519", "same-conn login x25519", conn=conn)
        service_exchange(ch, user, "same-conn login x25519")
    finally:
        conn.close()


def expect_error(conn: Conn, tag: str, want_code: str) -> tuple[str, str, bytes]:
    try:
        code, msg, line = conn.recv_error(tag)
    except EOFErr:
        check(f"{tag}: error {want_code}", False, "connection closed without an error message")
        raise Abort(tag)
    check(f"{tag}: error {want_code}", code == want_code, f"got {line!r}")
    return code, msg, line


def scen_wrong_key_and_unknown_user(ctx, cred):
    # Wrong ClientKey for an existing user.
    tag = "neg wrong ClientKey"
    conn, _, a3_wrong, _ = auth(ctx, cred, None, tag, client_key_override=secrets.token_bytes(32),
                                expect_success=False)
    try:
        _, _, line_wrong = expect_error(conn, tag, "authentication_failed")
    finally:
        conn.close()
    # Replay of the A3 of a failed attempt: its session was consumed.
    conn = Conn(ctx.addr)
    try:
        conn.send_obj(a3_wrong)
        expect_error(conn, "neg replayed A3 after failure", "unknown_session")
    finally:
        conn.close()

    # Unknown user: A2 looks normal and is deterministic; fails only at A4.
    ghost = "ghost-" + secrets.token_hex(6)
    gcred = Credential(ghost, "x", "random", None, None, secrets.token_bytes(32),
                       secrets.token_bytes(32), None)
    salts = []
    line_unknown = None
    for attempt in range(2):
        tag = f"neg unknown user (attempt {attempt + 1})"
        conn, _, _, am = auth(ctx, gcred, None, tag, expect_success=False)
        try:
            salt_b64 = am.decode().split(",s=", 1)[1].split(",", 1)[0]
            ic = int(am.decode().split(",i=", 1)[1].split(",", 1)[0])
            salts.append(base64.b64decode(salt_b64))
            check(f"{tag}: mock salt is 32 bytes, ic is the server's ic",
                  len(salts[-1]) == 32 and ic == ctx.server_ic,
                  f"salt {len(salts[-1])} bytes, ic {ic} vs {ctx.server_ic}")
            _, _, line = expect_error(conn, tag, "authentication_failed")
            line_unknown = line_unknown or line
        finally:
            conn.close()
    check("neg unknown user: mock salt is deterministic", salts[0] == salts[1],
          f"{salts[0].hex()} vs {salts[1].hex()}")
    check("neg unknown user: error line byte-identical to the wrong-proof error",
          line_unknown == line_wrong, f"{line_unknown!r} vs {line_wrong!r}")


def scen_replay_success_a3(ctx, cred):
    a3 = scen_login_nochannel(ctx, cred, "login for replay")
    conn = Conn(ctx.addr)
    try:
        conn.send_obj(a3)
        expect_error(conn, "neg replayed A3 after success", "unknown_session")
    finally:
        conn.close()


def scen_replay_r3(ctx):
    user = "replay-r3-" + secrets.token_hex(4)
    register(ctx, user, "pw-" + secrets.token_hex(8), "x25519", "random")
    r3 = ctx.last_reg["r3"]
    conn = Conn(ctx.addr)
    try:
        conn.send_obj(r3)
        expect_error(conn, "neg replayed R3", "unknown_session")
    finally:
        conn.close()


def scen_tampered_r3(ctx):
    user = "tamper-" + secrets.token_hex(4)
    pw = "pw-" + secrets.token_hex(8)
    g = GROUPS["x25519"]
    conn = Conn(ctx.addr)
    try:
        sk, cpk = g.keypair()
        cnonce = new_nonce()
        conn.send_obj({"type": "registration_pairing", "username": user, "group": "x25519",
                       "public_key": b64e(cpk), "client_nonce": cnonce, "labels": "random"})
        r2 = conn.recv_msg("neg tampered R3: R2", "registration_pairing", FIELDS["registration_pairing"])
        salt = b64d_strict(r2["salt"])
        spk = b64d_strict(r2["public_key"])
        host_key = b64d_strict(r2["host_key"])
        T = registration_transcript(user, "x25519", cpk, cnonce, "random", salt, r2["ic"], spk,
                                    r2["nonce"], host_key)
        h = hashlib.sha256(T).digest()
        prk = hkdf_extract(h, g.shared(sk, spk))
        k_c2s = hkdf_expand32(prk, b"scram-dh/1 registration c2s")
        ct = bytearray(ChaCha20Poly1305(k_c2s).encrypt(
            n_nonce(0), salted_password(pw, salt, r2["ic"]), h))
        ct[5] ^= 0x40
        conn.send_obj({"type": "registration_send_password", "secret_key": b64e(bytes(ct)),
                       "nonce": r2["nonce"]})
        expect_error(conn, "neg tampered R3 ciphertext", "invalid_message")
    finally:
        conn.close()
    # Nothing half-written: the same name registers afterwards.
    register(ctx, user, pw, "x25519", "random")
    check("neg tampered R3: nothing stored (the name registers afterwards)", True)


def scen_username_taken(ctx, cred):
    tag = "neg register existing username"
    g = GROUPS["x25519"]
    conn = Conn(ctx.addr)
    try:
        sk, cpk = g.keypair()
        cnonce = new_nonce()
        conn.send_obj({"type": "registration_pairing", "username": cred.username, "group": "x25519",
                       "public_key": b64e(cpk), "client_nonce": cnonce, "labels": "random"})
        line = conn.recv_line()
        obj, _ = parse_obj(line)
        if obj.get("type") == "error":
            check_error_shape(f"{tag} error object", line)
            check(f"{tag}: username_taken (at R2)", obj.get("code") == "username_taken", f"got {line!r}")
            return
        info(f"{tag}: R1 accepted, continuing to R3")
        salt = b64d_strict(obj["salt"])
        spk = b64d_strict(obj["public_key"])
        T = registration_transcript(cred.username, "x25519", cpk, cnonce, "random", salt, obj["ic"],
                                    spk, obj["nonce"], b64d_strict(obj["host_key"]))
        h = hashlib.sha256(T).digest()
        k_c2s = hkdf_expand32(hkdf_extract(h, g.shared(sk, spk)), b"scram-dh/1 registration c2s")
        ct = ChaCha20Poly1305(k_c2s).encrypt(n_nonce(0), salted_password("other", salt, obj["ic"]), h)
        conn.send_obj({"type": "registration_send_password", "secret_key": b64e(ct), "nonce": obj["nonce"]})
        expect_error(conn, f"{tag} (at R4)", "username_taken")
    finally:
        conn.close()
    # The original credential still works.
    scen_login_nochannel(ctx, cred, "existing user still logs in after username_taken")


def one_shot(ctx, tag, raw: bytes, want: str):
    conn = Conn(ctx.addr)
    try:
        conn.send_raw(raw + b"\n")
        expect_error(conn, tag, want)
    finally:
        conn.close()


def scen_bad_messages(ctx, cred):
    g = GROUPS["x25519"]
    _, cpk = g.keypair()
    user = "bad-" + secrets.token_hex(4)
    r1 = {"type": "registration_pairing", "username": user, "group": "x25519",
          "public_key": b64e(cpk), "client_nonce": new_nonce(), "labels": "random"}
    extra = dict(r1)
    extra["extra"] = "x"
    run_flow("neg R1 extra field", one_shot, ctx, "neg R1 with an extra field", encode_msg(extra),
             "invalid_message")
    a1 = {"type": "auth_pairing", "username": cred.username, "client_nonce": new_nonce(), "extra": 1}
    run_flow("neg A1 extra field", one_shot, ctx, "neg A1 with an extra field", encode_msg(a1),
             "invalid_message")
    missing = {k: v for k, v in r1.items() if k != "labels"}
    missing["client_nonce"] = new_nonce()
    run_flow("neg R1 missing field", one_shot, ctx, "neg R1 missing labels", encode_msg(missing),
             "invalid_message")
    short = {"type": "auth_pairing", "username": cred.username, "client_nonce": new_nonce()[:62]}
    run_flow("neg A1 short nonce", one_shot, ctx, "neg A1 with a 62-hex client_nonce",
             encode_msg(short), "invalid_message")

    m = GROUPS["modp2048"]
    bad_keys = [
        ("modp2048", "1", m.encode_int(1)),
        ("modp2048", "p-1", m.encode_int(m.p - 1)),
        ("modp2048", "11 (quadratic non-residue)", m.encode_int(11)),
        ("modp2048", "1 unpadded (1 byte)", b"\x01"),
        ("x25519", "1 (u=1, low order)", X25519Group.pk_one()),
    ]
    for grp, desc, pk in bad_keys:
        r = {"type": "registration_pairing", "username": "badkey-" + secrets.token_hex(4),
             "group": grp, "public_key": b64e(pk), "client_nonce": new_nonce(), "labels": "random"}
        run_flow(f"neg R1 {grp} key {desc}", one_shot, ctx,
                 f"neg R1 {grp} public key {desc}", encode_msg(r), "invalid_public_key")
    for grp, desc, pk in [("modp2048", "1", m.encode_int(1)), ("x25519", "1 (u=1)", X25519Group.pk_one())]:
        a = {"type": "auth_pairing", "username": cred.username, "client_nonce": new_nonce(),
             "group": grp, "public_key": b64e(pk)}
        run_flow(f"neg A1 {grp} key {desc}", one_shot, ctx,
                 f"neg A1 {grp} public key {desc}", encode_msg(a), "invalid_public_key")


def scen_nonce_reused(ctx, cred):
    cnonce = new_nonce()
    a1 = {"type": "auth_pairing", "username": cred.username, "client_nonce": cnonce}
    c1 = Conn(ctx.addr)
    c2 = Conn(ctx.addr)
    try:
        c1.send_obj(a1)
        c1.recv_msg("neg nonce reuse first A1: A2", "auth_pairing", FIELDS["auth_pairing"])
        c2.send_obj(a1)
        expect_error(c2, "neg A1 with a live client_nonce", "nonce_reused")
    finally:
        c1.close()
        c2.close()


def scen_nonce_mismatch(ctx, cred):
    conn = Conn(ctx.addr)
    try:
        cnonce = new_nonce()
        conn.send_obj({"type": "auth_pairing", "username": cred.username, "client_nonce": cnonce})
        a2 = conn.recv_msg("neg nonce mismatch: A2", "auth_pairing", FIELDS["auth_pairing"])
        wrong = a2["nonce"][:-1] + ("0" if a2["nonce"][-1] != "0" else "1")
        conn.send_obj({"type": "auth_client_proof_generation", "client_proof": b64e(bytes(32)),
                       "nonce": wrong})
        code, _, line = conn.recv_error("neg A3 with a wrong server nonce half")
        check("neg A3 with a wrong server nonce half: error nonce_mismatch or unknown_session",
              code in ("nonce_mismatch", "unknown_session"), f"got {line!r}")
    finally:
        conn.close()


# --------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True, help="HOST:PORT")
    ap.add_argument("--fingerprint", help="expected host key fingerprint, SHA256:...")
    args = ap.parse_args()
    host, _, port = args.server.rpartition(":")
    ctx = Ctx((host.strip("[]"), int(port)), args.fingerprint)

    sfx = secrets.token_hex(3)
    creds: dict = {}
    plan = [("x25519", "random", f"alice-{sfx}"),
            ("x25519", "rfc", f"bob-{sfx}"),
            ("modp2048", "random", f"carol-{sfx}"),
            ("modp2048", "rfc", f"dave-{sfx}"),
            ]
    for group, labels, user in plan:
        run_flow(f"register {group}/{labels}", scen_register_and_login, ctx, creds, group, labels, user)
    # saslname escaping: ',' and '=' in a username (printable ASCII, SASLprep identity).
    esc_user = f"e,v=e-{sfx}"
    esc = run_flow("register x25519/random (name with ',' and '=')", register, ctx, esc_user,
                   "pw-" + secrets.token_hex(8), "x25519", "random")

    for (group, labels), cred in list(creds.items()):
        base = f"login [{group}/{labels} user]"
        run_flow(f"{base} no channel", scen_login_nochannel, ctx, cred, f"{base} no channel")
        for cg in ("x25519", "modp2048"):
            run_flow(f"{base} channel {cg}", scen_login_channel, ctx, cred, cg, f"{base} channel {cg}",
                     tamper_at_end=(cg == "x25519" and labels == "random"))
    for group, labels, _ in plan:
        if (group, labels) not in creds:
            check(f"login [{group}/{labels} user]: skipped", False, "registration failed")
    if esc is not None:
        run_flow("login name with ',' and '='", scen_login_nochannel, ctx, esc,
                 "login [name with ',' and '='] no channel")
        run_flow("login name with ',' and '=' channel", scen_login_channel, ctx, esc, "x25519",
                 "login [name with ',' and '='] channel x25519")

    run_flow("register then login on one connection", scen_register_then_login_same_conn, ctx, creds)

    base_cred = creds.get(("x25519", "random"))
    if base_cred is None:
        check("negative checks", False, "no x25519/random user registered")
    else:
        run_flow("neg wrong key / unknown user", scen_wrong_key_and_unknown_user, ctx, base_cred)
        run_flow("neg replay A3", scen_replay_success_a3, ctx, base_cred)
        run_flow("neg username taken", scen_username_taken, ctx, base_cred)
        run_flow("neg bad messages", scen_bad_messages, ctx, base_cred)
        run_flow("neg nonce reuse", scen_nonce_reused, ctx, base_cred)
        run_flow("neg nonce mismatch", scen_nonce_mismatch, ctx, base_cred)
    run_flow("neg tampered R3", scen_tampered_r3, ctx)
    run_flow("neg replay R3", scen_replay_r3, ctx)

    passed = sum(1 for _, ok, _ in RESULTS if ok)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
