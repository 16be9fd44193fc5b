#!/usr/bin/env python3
"""A standard SCRAM-SHA-256 peer built on Python scramp (PyPI, pinned in
interop/requirements.txt), speaking the GNU SASL line framing over TCP
(notes: "GNU SASL line framing"): one base64 token per line.

Client (what `gsasl --client --quiet -m SCRAM-SHA-256` does):

    scramp_peer.py client HOST:PORT USER        (password: one line on stdin)

  sends `SCRAM-SHA-256\\n` and the base64 client-first at once; skips lines equal
  to the mechanism name and empty lines before server-first (so it also talks to
  `gsasl --server`, which echoes the mechanism and sends an empty challenge);
  sends client-final; reads server-final and checks the server signature; then
  sends an empty line and waits (briefly) for one.
  Exit 0: authenticated and the server signature verified (prints
  `authenticated as USER (server signature verified)`); 3: authentication failed
  (`e=...` from the server, or a bad server signature); 4: connection or framing
  failure; 2: usage.

Server (what our `serve --sasl` does, i.e. the peer of `gsasl --client`):

    scramp_peer.py server [--user NAME PASSWORD]... [--verifier NAME 'SCRAM-SHA-256$...']...
                          [--iterations N] [--connections N]

  listens on 127.0.0.1:0, prints `listening 127.0.0.1:PORT` (flushed), then serves
  connections one at a time: reads the mechanism line and client-first, answers
  server-first (or `e=...` and closes), reads client-final, answers server-final
  (`v=...` or `e=...`), then reads the client's empty line and answers an empty line.
  The lookup username -> (salt, StoredKey, ServerKey, i) comes from scramp's
  make_auth_info over the password given on argv (or from a given verifier).
  For each exchange it prints one line: `ok USER` or `fail USER e=VALUE (reason)`.
  With --connections N it exits after N exchanges (0 if every exchange it served
  printed `ok`, 3 otherwise); without, it serves until killed.

Every token sent and received is traced to stderr with --trace.
Passwords and names on argv/stdin are UTF-8.
"""

import argparse
import base64
import os
import socket
import sys

from scramp import ScramClient, ScramException, ScramMechanism

MECHANISM = "SCRAM-SHA-256"
EXIT_OK, EXIT_USAGE, EXIT_AUTH, EXIT_IO = 0, 2, 3, 4


class Framing(Exception):
    """The peer closed early or sent something that is not a line of base64."""


class Lines:
    """A socket read and written one `\\n`-terminated line at a time."""

    def __init__(self, sock, trace, who):
        self.sock = sock
        self.file = sock.makefile("rb")
        self.trace = trace
        self.who = who

    def log(self, arrow, line):
        if self.trace:
            print(f"{self.who} {arrow} {line!r}", file=sys.stderr, flush=True)

    def send(self, *lines):
        data = b"".join(line.encode("ascii") + b"\n" for line in lines)
        for line in lines:
            self.log(">>", line)
        self.sock.sendall(data)

    def recv(self, what):
        raw = self.file.readline()
        if not raw:
            self.log("<<", "<EOF>")
            raise Framing(f"connection closed before {what}")
        if not raw.endswith(b"\n"):
            self.log("<<", raw.decode("latin-1"))
            raise Framing(f"{what}: last line has no newline: {raw!r}")
        line = raw[:-1].rstrip(b"\r").decode("latin-1")
        self.log("<<", line)
        return line


def b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def unb64(line, what):
    try:
        return base64.b64decode(line.encode("ascii"), validate=True).decode("utf-8")
    except (ValueError, UnicodeError) as e:
        raise Framing(f"{what} is not base64 of UTF-8: {line!r} ({e})") from e


def arg_text(s):
    # argv is decoded with surrogateescape; take the bytes back as UTF-8
    return os.fsencode(s).decode("utf-8")


def run_client(args):
    password = sys.stdin.buffer.readline().rstrip(b"\r\n").decode("utf-8")
    user = arg_text(args.user)
    host, _, port = args.addr.rpartition(":")
    client = ScramClient([MECHANISM], user, password)
    try:
        sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    except OSError as e:
        print(f"connect {args.addr}: {e}", file=sys.stderr)
        return EXIT_IO
    with sock:
        io = Lines(sock, args.trace, "client")
        try:
            io.send(MECHANISM, b64(client.get_client_first()))
            # gsasl --server echoes the mechanism and sends an empty initial challenge
            while True:
                line = io.recv("server-first")
                if line not in ("", MECHANISM):
                    break
            server_first = unb64(line, "server-first")
            if server_first.startswith("e="):
                print(f"authentication failed: server-first {server_first}", file=sys.stderr)
                return EXIT_AUTH
            client.set_server_first(server_first)
            io.send(b64(client.get_client_final()))
            server_final = unb64(io.recv("server-final"), "server-final")
            if server_final.startswith("e="):
                print(f"authentication failed: server-final {server_final}", file=sys.stderr)
                return EXIT_AUTH
            try:
                client.set_server_final(server_final)
            except ScramException as e:
                print(f"authentication failed: bad server-final {server_final!r}: {e}", file=sys.stderr)
                return EXIT_AUTH
            # The closing empty lines of the gsasl framing: best effort, the
            # exchange is already decided. `gsasl --server` answers none (it waits
            # for application data until EOF), so close our side first.
            try:
                io.send("")
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(5)
                io.recv("closing empty line")
            except (OSError, Framing) as e:
                if args.trace:
                    print(f"client: no closing empty line ({e})", file=sys.stderr)
        except ScramException as e:
            print(f"authentication failed: {e}", file=sys.stderr)
            return EXIT_AUTH
        except (OSError, Framing) as e:
            print(f"connection failure: {e}", file=sys.stderr)
            return EXIT_IO
    print(f"authenticated as {user} (server signature verified)", flush=True)
    return EXIT_OK


def parse_verifier(text):
    # SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey> (PostgreSQL's format)
    try:
        scheme, rest = text.split("$", 1)
        ic_salt, keys = rest.split("$", 1)
        ic, salt = ic_salt.split(":", 1)
        stored, server = keys.split(":", 1)
        if scheme != MECHANISM:
            raise ValueError(scheme)
        d = base64.b64decode
        return d(salt, validate=True), d(stored, validate=True), d(server, validate=True), int(ic)
    except ValueError as e:
        raise SystemExit(f"malformed verifier {text!r}: {e}") from e


def serve_one(conn, lookup, args):
    """One exchange; returns (ok, line to print)."""
    m = ScramMechanism(MECHANISM)
    io = Lines(conn, args.trace, "server")
    seen = {}

    def auth_fn(username):
        seen["user"] = username
        return lookup.get(username)

    server = m.make_server(auth_fn)
    user = lambda: seen.get("user", "?")  # noqa: E731
    try:
        mech = io.recv("mechanism")
        if mech != MECHANISM:
            return False, f"fail ? bad mechanism line {mech!r}"
        client_first = unb64(io.recv("client-first"), "client-first")
        try:
            server.set_client_first(client_first)
            io.send(b64(server.get_server_first()))
        except ScramException as e:
            final = server.get_server_final() if server.error else "e=other-error"
            io.send(b64(final))
            return False, f"fail {user()} {final} ({e})"
        client_final = unb64(io.recv("client-final"), "client-final")
        try:
            server.set_client_final(client_final)
        except ScramException as e:
            final = server.get_server_final() if server.error else "e=other-error"
            io.send(b64(final))
            return False, f"fail {user()} {final} ({e})"
        io.send(b64(server.get_server_final()))
        # gsasl --client then sends an empty line and waits for one
        try:
            conn.settimeout(2)
            if io.recv("closing empty line") == "":
                io.send("")
        except (OSError, Framing) as e:
            if args.trace:
                print(f"server: no closing empty line ({e})", file=sys.stderr)
        return True, f"ok {user()}"
    except (OSError, Framing) as e:
        return False, f"fail {user()} connection: {e}"


def run_server(args):
    m = ScramMechanism(MECHANISM)
    lookup = {}
    for name, password in args.user or []:
        salt, stored, server, ic = m.make_auth_info(arg_text(password), iteration_count=args.iterations)
        lookup[arg_text(name)] = (salt, stored, server, ic)
    for name, verifier in args.verifier or []:
        lookup[arg_text(name)] = parse_verifier(verifier)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    host, port = listener.getsockname()
    print(f"listening {host}:{port}", flush=True)
    served, failures = 0, 0
    while args.connections is None or served < args.connections:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(args.timeout)
            ok, line = serve_one(conn, lookup, args)
        served += 1
        failures += 0 if ok else 1
        print(line, flush=True)
    return EXIT_OK if failures == 0 else EXIT_AUTH


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", action="store_true", help="trace every line to stderr")
    p.add_argument("--timeout", type=float, default=30.0)
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("client")
    c.add_argument("addr")
    c.add_argument("user")
    s = sub.add_parser("server")
    s.add_argument("--user", nargs=2, action="append", metavar=("NAME", "PASSWORD"))
    s.add_argument("--verifier", nargs=2, action="append", metavar=("NAME", "VERIFIER"))
    s.add_argument("--iterations", type=int, default=4096)
    s.add_argument("--connections", type=int)
    args = p.parse_args()
    try:
        return run_client(args) if args.mode == "client" else run_server(args)
    except KeyboardInterrupt:
        return EXIT_IO


if __name__ == "__main__":
    sys.exit(main())
