#!/usr/bin/env python3
"""An RFC 7804 (HTTP SCRAM-SHA-256) client: PyPI requests-scram over scramp
(pinned in interop/requirements.txt).

    http_scram.py URL USER        (password: one line on stdin)

GETs URL with requests-scram's HTTPSCRAMAuth. requests-scram does not check the
server signature, so this script does: it reads `Authentication-Info: sid=...,
data=...` from the final response, checks the sid, and gives the decoded
server-final-message to the same scramp client (`set_server_final`).

Output: the response body, then `authenticated as USER (server signature verified)`.
Exit 0: 2xx and the signature verified; 3: authentication failed (non-2xx, no or
bad Authentication-Info, `e=...`, any SCRAM error); 4: connection failure; 2: usage.
With --trace every request's Authorization and every response's status and
SCRAM headers go to stderr.
"""

import argparse
import base64
import contextlib
import os
import sys

import requests
from requests.utils import parse_dict_header
from requests_scram import HTTPSCRAMAuth
from scramp import ScramException

EXIT_OK, EXIT_USAGE, EXIT_AUTH, EXIT_IO = 0, 2, 3, 4


def trace(resp):
    for r in [*resp.history, resp]:
        print(f"> GET {r.request.url} Authorization: {r.request.headers.get('Authorization')!r}", file=sys.stderr)
        print(
            f"< {r.status_code} WWW-Authenticate: {r.headers.get('WWW-Authenticate')!r} "
            f"Authentication-Info: {r.headers.get('Authentication-Info')!r}",
            file=sys.stderr,
        )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("user")
    p.add_argument("--trace", action="store_true")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args()
    user = os.fsencode(args.user).decode("utf-8")
    password = sys.stdin.buffer.readline().rstrip(b"\r\n").decode("utf-8")

    # Its default mechanism list has SCRAM-SHA-512 and SCRAM-SHA3-512, and scramp
    # picks the strongest: ask for SCRAM-SHA-256 alone.
    auth = HTTPSCRAMAuth(user, password, mechanisms=["SCRAM-SHA-256"])
    try:
        # requests-scram prints every response's headers to stdout
        with contextlib.redirect_stdout(sys.stderr):
            resp = requests.get(args.url, auth=auth, timeout=args.timeout)
    except requests.ConnectionError as e:
        print(f"connection failure: {e}", file=sys.stderr)
        return EXIT_IO
    except ScramException as e:
        print(f"authentication failed: {e}", file=sys.stderr)
        return EXIT_AUTH
    except Exception as e:  # requests-scram's own bugs on odd answers (UnboundLocalError, KeyError)
        print(f"authentication failed: requests-scram raised {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_AUTH
    if args.trace:
        trace(resp)
    if not resp.ok:
        print(f"authentication failed: status {resp.status_code}: {resp.text!r}", file=sys.stderr)
        return EXIT_AUTH
    info = resp.headers.get("Authentication-Info")
    if not info:
        print(f"authentication failed: {resp.status_code} without Authentication-Info", file=sys.stderr)
        return EXIT_AUTH
    params = parse_dict_header(info)
    if params.get("sid") != auth.sid:
        print(f"authentication failed: Authentication-Info sid {params.get('sid')!r} != {auth.sid!r}", file=sys.stderr)
        return EXIT_AUTH
    try:
        server_final = base64.b64decode(params.get("data") or "", validate=True).decode("utf-8")
        auth.client.set_server_final(server_final)
    except (ValueError, UnicodeError, ScramException) as e:
        print(f"authentication failed: bad server signature in {info!r}: {e}", file=sys.stderr)
        return EXIT_AUTH
    print(resp.text)
    print(f"authenticated as {user} (server signature verified)", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
