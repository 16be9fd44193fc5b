#!/usr/bin/env bash
# A multi-node scram-dh deployment on one machine (issue 9): PostgreSQL for the
# credentials, Redis for the in-flight handshakes, HTTP sessions and guessing
# penalties, N `scram-dh serve` nodes sharing one host key and one cluster secret,
# and nginx in front of their HTTP listeners as the load balancer.
#
#   scripts/cluster.sh up [DIR]        start everything (default DIR: target/cluster); prints the
#                                      load balancer's URL and writes DIR/env (sourceable)
#   scripts/cluster.sh down [DIR]      stop everything started in DIR
#   scripts/cluster.sh status [DIR]    what runs
#   scripts/cluster.sh stop-postgres|start-postgres|stop-redis|start-redis [DIR]
#                                      a crash (SIGKILL / immediate shutdown) and a restart on the
#                                      same port, to watch the nodes fail closed and recover
#
# Environment: NODES (default 2), SCRAM_DH_BIN (default: target/release/scram-dh, built if
# missing), SCRAM_DH_NODE_ARGS (extra `serve` flags for every node).
# Needs postgresql-15, redis-server and nginx (Debian; scripts/peers.sh installs them).
# Every server listens on 127.0.0.1 only, on free ports chosen at start (free_port below).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_BIN=/usr/lib/postgresql/15/bin

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

cmd="${1:-}"
DIR="${2:-$ROOT/target/cluster}"
NODES="${NODES:-2}"

# A loopback port for a server started here, by the protocol of crates/scram-dh-testkit
# (whose docs say why): from outside the kernel's ephemeral range, so that no bind(0)
# or outgoing connection takes it between this pick and the server's bind (or while
# stop-redis/stop-postgres leave it closed), and reserved for 30 minutes by a file
# created with O_EXCL in $TMPDIR/scram-dh-test-ports, so that clusters and test
# servers started side by side never get the same one.
free_port() {
    python3 - <<'PY'
import os, random, socket, time
try:
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except (OSError, ValueError):
    lo, hi = 32768, 60999
ports = [p for p in range(10000, 65536) if not lo <= p <= hi]
d = os.path.join(os.environ.get("TMPDIR") or "/tmp", "scram-dh-test-ports")  # as Rust's temp_dir()
def reserve(port):
    path = os.path.join(d, str(port))
    for _ in range(2):
        try:
            if not os.path.isdir(d):
                os.makedirs(d, exist_ok=True)
                os.chmod(d, 0o1777)
            with open(path, "x") as f:
                f.write(f"{os.getpid()}\n")
            return True
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime <= 30 * 60:
                    return False
                os.remove(path)
            except OSError:
                pass
        except OSError:
            return True  # the directory is unusable: unreserved, still outside the range
    return False
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
for port in random.sample(ports, min(256, len(ports))):
    if reserve(port) and free(port):
        print(port)
        break
else:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
PY
}

# PostgreSQL refuses to run as root: the server and its tools run as `postgres` then.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_for() { # what, seconds, command...
    local what="$1" limit="$2"
    shift 2
    local i
    for ((i = 0; i < limit * 10; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "cluster.sh: $what did not come up within ${limit}s" >&2
    return 1
}

load_env() {
    [ -f "$DIR/env" ] || die "no cluster in $DIR (run: scripts/cluster.sh up $DIR)"
    # shellcheck disable=SC1091
    . "$DIR/env"
}

pg_start() {
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w -t 30 \
        -o "-p $PG_PORT -k $DIR/pg -c listen_addresses=127.0.0.1" start >/dev/null \
        || die "PostgreSQL did not start (log: $DIR/pg/postgres.log)"
}

pg_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m immediate stop >/dev/null 2>&1 || true
}

redis_start() {
    # No persistence: a restarted Redis starts empty (live handshakes and HTTP
    # sessions are lost; clients log in again). Uncompressed RDB, so that a dump
    # (redis-cli --rdb) shows every stored byte to tests/multinode.rs's secret scan.
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" --save '' --appendonly no --rdbcompression no \
        --requirepass "$REDIS_PASSWORD" --daemonize yes --pidfile "$DIR/redis/redis.pid" \
        --logfile "$DIR/redis/redis.log" || die "redis-server did not start (log: $DIR/redis/redis.log)"
    wait_for "Redis" 10 redis-cli -p "$REDIS_PORT" --no-auth-warning -a "$REDIS_PASSWORD" ping || exit 1
}

redis_stop() {
    if [ -f "$DIR/redis/redis.pid" ]; then
        kill -9 "$(cat "$DIR/redis/redis.pid")" 2>/dev/null || true
        rm -f "$DIR/redis/redis.pid"
    fi
}

nginx_conf() {
    local user_line="" servers="" i
    # As root, nginx's workers drop to an unprivileged user.
    if [ "$(id -u)" -eq 0 ]; then
        if id www-data >/dev/null 2>&1; then user_line="user www-data;"; else user_line="user nobody;"; fi
    fi
    for ((i = 1; i <= NODES; i++)); do
        local var="NODE${i}_HTTP"
        servers+="        server ${!var} max_fails=0;"$'\n'
    done
    cat <<EOF
# Generated by scripts/cluster.sh: round-robin over the nodes' HTTP listeners.
$user_line
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections 4096; }
http {
    # Which node served each request: the tests read it to see a login's steps
    # land on different nodes.
    log_format nodes '\$request_method \$uri \$status upstream=\$upstream_addr';
    access_log $DIR/nginx/access.log nodes;
    client_body_temp_path $DIR/nginx/tmp/body;
    proxy_temp_path $DIR/nginx/tmp/proxy;
    fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
    scgi_temp_path $DIR/nginx/tmp/scgi;
    upstream scram_dh {
$servers        keepalive 64;
    }
    server {
        listen 127.0.0.1:$LB_PORT;
        location / {
            proxy_pass http://scram_dh;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            # nginx is the edge: it replaces, never appends to, what a client sent,
            # and the nodes trust it for 127.0.0.1 only (--trusted-proxy).
            proxy_set_header X-Forwarded-For \$remote_addr;
            # A handshake step is not idempotent: never resend it to another node.
            proxy_next_upstream off;
            proxy_read_timeout 30s;
        }
    }
}
EOF
}

node_start() { # index
    local i="$1" tcp http log
    tcp="NODE${i}_TCP"
    http="NODE${i}_HTTP"
    log="$DIR/node$i/serve.log"
    # shellcheck disable=SC2086
    "$BIN" serve --listen "${!tcp}" --http "${!http}" --db "$PG_URL" --sessions "$REDIS_URL" \
        --host-key "$DIR/host.key" --cluster-secret-file "$DIR/cluster.secret" \
        --trusted-proxy 127.0.0.1/32 ${SCRAM_DH_NODE_ARGS:-} >"$log" 2>&1 &
    echo $! >"$DIR/node$i/pid"
    local pid t
    pid=$(cat "$DIR/node$i/pid")
    for ((t = 0; t < 300; t++)); do
        grep -q "listening on" "$log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    die "node $i did not start: $(tail -5 "$log")"
}

up() {
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 is missing (scripts/peers.sh installs it)"
    command -v redis-server >/dev/null || die "redis-server is missing (scripts/peers.sh installs it)"
    [ -x /usr/sbin/nginx ] || die "nginx is missing (scripts/peers.sh installs it)"
    if [ -f "$DIR/env" ]; then die "$DIR already holds a cluster (scripts/cluster.sh down $DIR first)"; fi
    BIN="${SCRAM_DH_BIN:-$ROOT/target/release/scram-dh}"
    if [ ! -x "$BIN" ]; then
        (cd "$ROOT" && cargo build --release -p scram-dh-cli) || die "cargo build failed"
    fi
    mkdir -p "$DIR"/{pg,redis,nginx/tmp}
    # As root, PostgreSQL runs as `postgres`, which must reach $DIR/pg.
    if [ "$(id -u)" -eq 0 ]; then chmod 755 "$DIR"; fi
    for ((i = 1; i <= NODES; i++)); do mkdir -p "$DIR/node$i"; done
    PG_PORT=$(free_port)
    REDIS_PORT=$(free_port)
    LB_PORT=$(free_port)
    REDIS_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    local db_password
    db_password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    PG_URL="postgres://scram_dh:$db_password@127.0.0.1:$PG_PORT/scram_dh"
    REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/"
    # The one secret every node shares (mock salts, session seals), as the issue asks.
    (umask 077 && head -c 32 /dev/urandom >"$DIR/cluster.secret")

    # The env file first: whatever fails from here on, `down` (run by the trap below)
    # finds what was started.
    {
        echo "# scripts/cluster.sh up $DIR"
        echo "NODES=$NODES"
        echo "BIN=$BIN"
        echo "PG_PORT=$PG_PORT"
        echo "PG_URL=$PG_URL"
        echo "REDIS_PORT=$REDIS_PORT"
        echo "REDIS_PASSWORD=$REDIS_PASSWORD"
        echo "REDIS_URL=$REDIS_URL"
        echo "LB_PORT=$LB_PORT"
        echo "LB_URL=http://127.0.0.1:$LB_PORT"
        for ((i = 1; i <= NODES; i++)); do
            echo "NODE${i}_TCP=127.0.0.1:$(free_port)"
            echo "NODE${i}_HTTP=127.0.0.1:$(free_port)"
        done
    } >"$DIR/env"
    chmod 600 "$DIR/env"
    load_env
    trap 'echo "cluster.sh: up failed; stopping what it started" >&2; down >/dev/null 2>&1' EXIT

    # PostgreSQL: a fresh cluster, one role and one database for the nodes.
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR/pg"; fi
    as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth-host=scram-sha-256 --auth-local=trust \
        --no-sync >"$DIR/pg/initdb.log" 2>&1 || die "initdb failed (log: $DIR/pg/initdb.log)"
    pg_start
    as_pg psql -X -q -h "$DIR/pg" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE scram_dh LOGIN PASSWORD '$db_password'" -c "CREATE DATABASE scram_dh OWNER scram_dh" \
        >/dev/null || die "creating the database failed"
    redis_start


    # Node 1 makes the host key; the others load it.
    for ((i = 1; i <= NODES; i++)); do node_start "$i"; done

    nginx_conf >"$DIR/nginx/nginx.conf"
    if [ "$(id -u)" -eq 0 ]; then chown -R "$(awk '/^user/ {sub(";","",$2); print $2}' "$DIR/nginx/nginx.conf")" "$DIR/nginx/tmp"; fi
    /usr/sbin/nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" \
        || die "nginx did not start (log: $DIR/nginx/error.log)"
    wait_for "nginx" 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $LB_PORT), 1)" || exit 1
    trap - EXIT
    echo "cluster up in $DIR: $NODES node(s) behind nginx at $LB_URL"
    echo "  host key: $(grep '^listening on' "$DIR/node1/serve.log" | sed 's/.* host key \([^ ]*\).*/\1/')"
    echo "  try: $BIN register alice --http $LB_URL"
}

down() {
    [ -f "$DIR/env" ] || { echo "cluster.sh: nothing in $DIR"; return 0; }
    load_env
    if [ -f "$DIR/nginx/nginx.pid" ]; then /usr/sbin/nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" -s stop 2>/dev/null || true; fi
    for ((i = 1; i <= NODES; i++)); do
        if [ -f "$DIR/node$i/pid" ]; then kill "$(cat "$DIR/node$i/pid")" 2>/dev/null || true; fi
    done
    redis_stop
    pg_stop
    rm -f "$DIR/env"
    echo "cluster in $DIR stopped"
}

status() {
    load_env
    echo "nodes: $NODES; load balancer $LB_URL"
    for ((i = 1; i <= NODES; i++)); do
        local http="NODE${i}_HTTP"
        if kill -0 "$(cat "$DIR/node$i/pid" 2>/dev/null || echo 0)" 2>/dev/null; then s=up; else s=down; fi
        echo "node $i: $s (http ${!http})"
    done
    if as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then s=up; else s=down; fi
    echo "postgres: $s (port $PG_PORT)"
    if redis-cli -p "$REDIS_PORT" --no-auth-warning -a "$REDIS_PASSWORD" ping >/dev/null 2>&1; then s=up; else s=down; fi
    echo "redis: $s (port $REDIS_PORT)"
}

case "$cmd" in
    up) up ;;
    down) down ;;
    status) status ;;
    stop-postgres) load_env && pg_stop ;;
    start-postgres) load_env && pg_start ;;
    stop-redis) load_env && redis_stop ;;
    start-redis) load_env && redis_start ;;
    *) die "usage: scripts/cluster.sh up|down|status|stop-postgres|start-postgres|stop-redis|start-redis [DIR]" ;;
esac
