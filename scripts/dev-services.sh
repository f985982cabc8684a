#!/usr/bin/env bash
# The services of a multi-machine sweep: a throwaway PostgreSQL cluster (TLS on, a role
# with a generated password, one database for Optuna and one for MLflow) and an MLflow
# tracking server with MLflow's authentication app that serves artifacts over HTTP.
#
#   eval "$(scripts/dev-services.sh start)"   # start; prints the export lines below
#   scripts/dev-services.sh env                # print them again
#   scripts/dev-services.sh stop               # stop both and delete the folder
#   scripts/dev-services.sh dump               # both databases as SQL (checks of what was stored)
#
# Exports GATED_BERT_TEST_POSTGRES (the Optuna storage URL, password included; keep it in
# GATED_BERT_STORAGE or ~/.pgpass, never on a command line), GATED_BERT_TEST_MLFLOW (the
# tracking server's URL), MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (the sweep
# workers' user) and GATED_BERT_SERVICES_DIR. The server's admin password is generated at
# start and kept only in $GATED_BERT_SERVICES_DIR/secrets/admin_password (mode 600).
# Anonymous requests get HTTP 401; other users get no permission on the workers' experiments.
# No password is ever passed on a command line (the process list shows every user's).
#
# Settings: GATED_BERT_SERVICES_DIR (default /tmp/gated-bert-services),
# GATED_BERT_SERVICES_HOST (the address both listen on, default 127.0.0.1),
# GATED_BERT_SERVICES_NETNS (run both in this network namespace, `ip netns`),
# GATED_BERT_PG_PORT and GATED_BERT_MLFLOW_PORT (default: free ports).
# PostgreSQL is installed from the distribution's packages when absent (needs root or sudo).
set -euo pipefail

DIR=${GATED_BERT_SERVICES_DIR:-/tmp/gated-bert-services}
HOST=${GATED_BERT_SERVICES_HOST:-127.0.0.1}
NETNS=${GATED_BERT_SERVICES_NETNS:-}
ROLE=gated_bert
WORKER=sweep-worker
PYTHON=${PYTHON:-python}

log() { echo "dev-services: $*" >&2; }

in_ns() {  # in_ns CMD...: run CMD in the services' network namespace, if any
    if [ -n "$NETNS" ]; then ip netns exec "$NETNS" "$@"; else "$@"; fi
}

as_owner() {  # PostgreSQL refuses to run as root: use the postgres user there
    if [ "$(id -u)" = 0 ]; then in_ns runuser -u postgres -- "$@"; else in_ns "$@"; fi
}

free_port() {
    in_ns "$PYTHON" -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$HOST"
}

secret() { "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))'; }

pg_bin() {  # the folder of initdb/pg_ctl, installing PostgreSQL if needed
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$found" ] && command -v pg_ctl >/dev/null; then found=$(dirname "$(command -v pg_ctl)"); fi
    if [ -z "$found" ]; then
        log "installing PostgreSQL from the distribution's packages"
        local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
        found=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    fi
    echo "$found"
}

print_env() {
    cat "$DIR/env"
}

start_postgres() {  # start_postgres BIN PORT PASSWORD
    local bin=$1 port=$2 password=$3
    as_owner "$bin/initdb" -D "$DIR/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log"
    # TLS with a self-signed certificate: clients on other hosts connect with sslmode=require
    openssl req -new -x509 -days 30 -nodes -subj "/CN=gated-bert-dev-services" \
        -keyout "$DIR/pg/server.key" -out "$DIR/pg/server.crt" >/dev/null 2>&1
    chmod 600 "$DIR/pg/server.key"
    if [ "$(id -u)" = 0 ]; then chown postgres "$DIR/pg/server.key" "$DIR/pg/server.crt"; fi
    printf "listen_addresses = '%s'\nport = %s\nunix_socket_directories = '%s'\nssl = on\n" \
        "$HOST" "$port" "$DIR/socket" | as_owner tee -a "$DIR/pg/postgresql.conf" >/dev/null
    echo "hostssl all all 0.0.0.0/0 scram-sha-256" | as_owner tee -a "$DIR/pg/pg_hba.conf" >/dev/null
    as_owner "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/socket/postgres.log" -w start >&2
    local psql=("$bin/psql" -h "$DIR/socket" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q)
    # SQL on stdin, not in arguments: the password never shows in the process list
    printf "CREATE ROLE %s LOGIN PASSWORD '%s';\nCREATE DATABASE optuna OWNER %s;\nCREATE DATABASE mlflow OWNER %s;\n" \
        "$ROLE" "$password" "$ROLE" "$ROLE" | as_owner "${psql[@]}"
}

start_mlflow() {  # start_mlflow PORT BACKEND_URI ADMIN_PASSWORD
    local port=$1
    cat >"$DIR/secrets/basic_auth.ini" <<EOF
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = sqlite:///$DIR/secrets/basic_auth.db
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# a password check (PBKDF2) costs about 0.4 s of CPU here; cache accepted credentials for a minute
# (a changed password then takes up to that long to apply on every server worker)
auth_cache_ttl_seconds = 60
EOF
    (
        # secrets reach the server through its environment, never its arguments
        export MLFLOW_BACKEND_STORE_URI=$2 MLFLOW_AUTH_ADMIN_PASSWORD=$3
        export MLFLOW_AUTH_CONFIG_PATH=$DIR/secrets/basic_auth.ini
        MLFLOW_FLASK_SERVER_SECRET_KEY=$(secret); export MLFLOW_FLASK_SERVER_SECRET_KEY
        in_ns nohup "$PYTHON" -m mlflow server --app-name basic-auth --host "$HOST" --port "$port" \
            --workers 2 --serve-artifacts --artifacts-destination "$DIR/artifacts" \
            >"$DIR/mlflow.log" 2>&1 &
        echo $! >"$DIR/mlflow.pid"
    )
    for _ in $(seq 1 120); do
        if in_ns "$PYTHON" -c "import urllib.request as u; u.urlopen('http://$HOST:$port/health', timeout=2)" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$(cat "$DIR/mlflow.pid")" 2>/dev/null; then
            log "mlflow server exited; its log:"; tail -20 "$DIR/mlflow.log" >&2; exit 1
        fi
        sleep 1
    done
    log "mlflow server did not answer on http://$HOST:$port within 120 s"; exit 1
}

create_worker() {  # create_worker URL ADMIN_PASSWORD WORKER_PASSWORD: the sweep workers' user
    ADMIN_PASSWORD=$2 WORKER_PASSWORD=$3 in_ns "$PYTHON" - "$1" "$WORKER" <<'EOF'
import base64, json, os, sys, urllib.request

url, user = sys.argv[1], sys.argv[2]
admin = base64.b64encode(f"admin:{os.environ['ADMIN_PASSWORD']}".encode()).decode()
body = json.dumps({"username": user, "password": os.environ["WORKER_PASSWORD"]}).encode()
request = urllib.request.Request(
    f"{url}/api/2.0/mlflow/users/create", data=body, method="POST",
    headers={"Authorization": f"Basic {admin}", "Content-Type": "application/json"},
)
urllib.request.urlopen(request, timeout=30).read()
EOF
}

start() {
    if [ -f "$DIR/env" ] && running; then print_env; return; fi
    local bin pg_port mlflow_port password admin_password worker_password
    bin=$(pg_bin)
    pg_port=${GATED_BERT_PG_PORT:-$(free_port)}
    mlflow_port=${GATED_BERT_MLFLOW_PORT:-$(free_port)}
    password=$(secret) admin_password=$(secret) worker_password=$(secret)
    rm -rf "$DIR"
    mkdir -p "$DIR/pg" "$DIR/socket" "$DIR/artifacts"
    (umask 077 && mkdir "$DIR/secrets")
    echo "$NETNS" >"$DIR/netns"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$DIR/pg" "$DIR/socket"
        if ! runuser -u postgres -- test -w "$DIR/pg"; then
            log "the postgres user cannot reach $DIR (a parent folder is private): chmod o+x its folders or set GATED_BERT_SERVICES_DIR"
            exit 1
        fi
    fi
    (umask 077 && echo "$admin_password" >"$DIR/secrets/admin_password")
    start_postgres "$bin" "$pg_port" "$password"
    echo "$bin" >"$DIR/pg_bin"
    local base="postgresql://$ROLE:$password@$HOST:$pg_port"
    start_mlflow "$mlflow_port" "$base/mlflow?sslmode=require" "$admin_password"
    create_worker "http://$HOST:$mlflow_port" "$admin_password" "$worker_password"
    (umask 077 && cat >"$DIR/env" <<EOF
export GATED_BERT_SERVICES_DIR=$DIR
export GATED_BERT_TEST_POSTGRES='$base/optuna?sslmode=require'
export GATED_BERT_TEST_MLFLOW=http://$HOST:$mlflow_port
export MLFLOW_TRACKING_USERNAME=$WORKER
export MLFLOW_TRACKING_PASSWORD='$worker_password'
EOF
    )
    log "PostgreSQL (TLS) on $HOST:$pg_port, MLflow server (authenticated) on http://$HOST:$mlflow_port${NETNS:+ in network namespace $NETNS} (folder $DIR)"
    print_env
}

running() {  # true if the services in $DIR are still up
    [ -f "$DIR/mlflow.pid" ] && kill -0 "$(cat "$DIR/mlflow.pid")" 2>/dev/null
}

load_netns() { [ -f "$DIR/netns" ] && NETNS=$(cat "$DIR/netns") || true; }

pg() {  # pg stop|start: stop or start the database only (tests of a lost connection)
    local bin; bin=$(cat "$DIR/pg_bin"); load_netns
    if [ "$1" = stop ]; then
        as_owner "$bin/pg_ctl" -D "$DIR/pg" -m fast -w stop >&2
    else
        as_owner "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/socket/postgres.log" -w start >&2
    fi
}

dump() {  # both databases as SQL on stdout, through the local socket
    local bin port; bin=$(cat "$DIR/pg_bin"); load_netns
    port=$(sed -n 's/^port = //p' "$DIR/pg/postgresql.conf" | tail -1)
    for database in optuna mlflow; do
        as_owner "$bin/pg_dump" -h "$DIR/socket" -p "$port" -U postgres "$database"
    done
}

stop() {
    load_netns
    if [ -f "$DIR/mlflow.pid" ]; then
        local pid; pid=$(cat "$DIR/mlflow.pid")
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    fi
    if [ -f "$DIR/pg_bin" ] && [ -f "$DIR/pg/postmaster.pid" ]; then
        as_owner "$(cat "$DIR/pg_bin")/pg_ctl" -D "$DIR/pg" -m fast -w stop >&2 || true
    fi
    rm -rf "$DIR"
    log "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) print_env ;;
    dump) dump ;;
    pg-stop) pg stop ;;
    pg-start) pg start ;;
    *) echo "usage: $0 start|stop|env|dump|pg-stop|pg-start" >&2; exit 2 ;;
esac
