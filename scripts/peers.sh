#!/usr/bin/env bash
# Installs the independent peers of the standard-SCRAM interop tests
# (crates/scram-dh-cli/tests/std_interop.rs), tcpdump for the packet-capture
# test (tests/capture.rs), redis-server for the Redis store tests
# (crates/scram-dh-store/tests/session_suite.rs), and nginx for the multi-node
# deployment (scripts/cluster.sh, tests/multinode.rs), each only when it is missing:
#   Debian: gsasl, socat, postgresql (server 15: /usr/lib/postgresql/15/bin/initdb), tcpdump,
#           redis-server + redis-tools, nginx
#   PyPI:   interop/requirements.txt (scramp, requests-scram; pinned) in target/peers-venv
#   npm:    interop/node (gel; package-lock.json) with `npm ci`, run by the machine's node
#   Debian: chromium + chromium-driver, and npm: web/ (esbuild, playwright-core, @noble/*;
#           package-lock.json) with `npm ci`, for the browser client's bundle check and its
#           headless-Chromium test (crates/scram-dh-cli/tests/browser.rs)
# Idempotent; prints what it installed; exits non-zero when something cannot be installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=target/peers-venv
PG_BIN=/usr/lib/postgresql/15/bin
installed=()

die() {
    echo "peers.sh: $*" >&2
    exit 1
}

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# Debian packages: apt-get update once, only when something is missing.
debs=()
command -v gsasl >/dev/null 2>&1 || debs+=(gsasl)
command -v socat >/dev/null 2>&1 || debs+=(socat)
command -v tcpdump >/dev/null 2>&1 || debs+=(tcpdump)
[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] || debs+=(postgresql-15)
command -v psql >/dev/null 2>&1 || debs+=(postgresql-client-15)
command -v redis-server >/dev/null 2>&1 || debs+=(redis-server redis-tools)
[ -x /usr/sbin/nginx ] || debs+=(nginx)
command -v node >/dev/null 2>&1 || debs+=(nodejs)
command -v npm >/dev/null 2>&1 || debs+=(npm)
[ -x /usr/bin/chromium ] || debs+=(chromium)
# A font for the page's text (the screenshot); chromium only recommends one.
[ -d /usr/share/fonts/truetype/liberation ] || [ -d /usr/share/fonts/truetype/dejavu ] || debs+=(fonts-liberation)
[ -x /usr/bin/chromedriver ] || debs+=(chromium-driver)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || debs+=(python3-venv)
# nm and objdump for the IFMA emulation harness (interop/ifma-emu/run.sh).
command -v objdump >/dev/null 2>&1 && command -v nm >/dev/null 2>&1 || debs+=(binutils)
if [ "${#debs[@]}" -gt 0 ]; then
    $sudo apt-get update || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${debs[@]}" \
        || die "apt-get install ${debs[*]} failed"
    installed+=("debian: ${debs[*]}")
fi
command -v gsasl >/dev/null 2>&1 || die "gsasl missing after install"
command -v socat >/dev/null 2>&1 || die "socat missing after install"
command -v tcpdump >/dev/null 2>&1 || die "tcpdump missing after install"
[ -x "$PG_BIN/initdb" ] || die "$PG_BIN/initdb missing after install (PostgreSQL 15)"
id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql package makes it)"
command -v redis-server >/dev/null 2>&1 || die "redis-server missing after install"
[ -x /usr/sbin/nginx ] || die "nginx missing after install"
command -v node >/dev/null 2>&1 || die "node missing after install"
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing after install"
# playwright-core (web/) needs Node.js 20 or later.
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
    || die "node $(node --version) is too old for web/ (playwright-core needs 20 or later)"

# Python venv with the pinned peers. A stamp holds the requirements it was made from.
req=interop/requirements.txt
stamp="$VENV/.requirements"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$req" "$stamp"; then
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" \
        || die "pip install -r $req failed"
    cp "$req" "$stamp"
    installed+=("pypi: $(grep -v '^#' "$req" | tr '\n' ' ')into $VENV")
fi
"$VENV/bin/python" -c 'import scramp, requests_scram' || die "scramp / requests-scram do not import from $VENV"

# npm gel, exactly as locked.
if [ ! -d interop/node/node_modules/gel ] || ! cmp -s interop/node/package-lock.json interop/node/node_modules/.package-lock.json.src; then
    (cd interop/node && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in interop/node failed"
    cp interop/node/package-lock.json interop/node/node_modules/.package-lock.json.src
    installed+=("npm: gel $(node -p 'require("./interop/node/node_modules/gel/package.json").version') into interop/node/node_modules")
fi

# The browser client's build and test tools, exactly as locked.
if [ ! -d web/node_modules/playwright-core ] || ! cmp -s web/package-lock.json web/node_modules/.package-lock.json.src; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in web failed"
    cp web/package-lock.json web/node_modules/.package-lock.json.src
    installed+=("npm: esbuild, playwright-core, @noble/* into web/node_modules")
fi

if [ "${#installed[@]}" -eq 0 ]; then
    echo "peers.sh: all present (tcpdump, gsasl, socat, PostgreSQL 15, redis-server, nginx, chromium, $VENV, interop/node, web)"
else
    for line in "${installed[@]}"; do echo "peers.sh: installed $line"; done
fi
