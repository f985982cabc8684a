#!/usr/bin/env bash
# The services of a multi-machine sweep, on this machine, listening on 127.0.0.1 only:
# a throwaway PostgreSQL cluster (role, password and two databases: one for Optuna, one
# for MLflow) and an MLflow tracking server on it that serves artifacts over HTTP.
#
#   eval "$(scripts/dev-services.sh start)"   # start; prints the export lines below
#   scripts/dev-services.sh env                # print them again
#   scripts/dev-services.sh stop               # stop both and delete the folder
#
# Exports GATED_BERT_TEST_POSTGRES (the Optuna storage URL, password included),
# GATED_BERT_TEST_MLFLOW (the tracking server's URL) and GATED_BERT_SERVICES_DIR.
# PostgreSQL is installed from the distribution's packages when absent (needs root or sudo).
# Settings: GATED_BERT_SERVICES_DIR (default /tmp/gated-bert-services),
# GATED_BERT_PG_PORT and GATED_BERT_MLFLOW_PORT (default: free ports).
set -euo pipefail

DIR=${GATED_BERT_SERVICES_DIR:-/tmp/gated-bert-services}
ROLE=gated_bert
PYTHON=${PYTHON:-python}

log() { echo "dev-services: $*" >&2; }

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

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

as_owner() {  # PostgreSQL refuses to run as root: use the postgres user there
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

print_env() {
    cat "$DIR/env"
}

start() {
    if [ -f "$DIR/env" ] && stop_quietly_if_dead; then print_env; return; fi
    local bin pg_port mlflow_port password
    bin=$(pg_bin)
    pg_port=${GATED_BERT_PG_PORT:-$(free_port)}
    mlflow_port=${GATED_BERT_MLFLOW_PORT:-$(free_port)}
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(12))')
    rm -rf "$DIR" && mkdir -p "$DIR/pg" "$DIR/socket" "$DIR/artifacts"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$DIR/pg" "$DIR/socket"
        if ! runuser -u postgres -- test -w "$DIR/pg"; then
            log "the postgres user cannot reach $DIR (a parent folder is private): chmod o+x its folders or set GATED_BERT_SERVICES_DIR"
            exit 1
        fi
    fi
    as_owner "$bin/initdb" -D "$DIR/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log"
    printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n" \
        "$pg_port" "$DIR/socket" | as_owner tee -a "$DIR/pg/postgresql.conf" >/dev/null
    as_owner "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/socket/postgres.log" -w start >&2
    local psql=("$bin/psql" -h "$DIR/socket" -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -q)
    as_owner "${psql[@]}" -c "CREATE ROLE $ROLE LOGIN PASSWORD '$password'"
    as_owner "${psql[@]}" -c "CREATE DATABASE optuna OWNER $ROLE"
    as_owner "${psql[@]}" -c "CREATE DATABASE mlflow OWNER $ROLE"
    local base="postgresql://$ROLE:$password@127.0.0.1:$pg_port"
    nohup "$PYTHON" -m mlflow server --host 127.0.0.1 --port "$mlflow_port" \
        --backend-store-uri "$base/mlflow" --serve-artifacts --artifacts-destination "$DIR/artifacts" \
        >"$DIR/mlflow.log" 2>&1 &
    echo $! >"$DIR/mlflow.pid"
    for _ in $(seq 1 120); do
        if "$PYTHON" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$mlflow_port/health', timeout=2)" 2>/dev/null; then
            break
        fi
        if ! kill -0 "$(cat "$DIR/mlflow.pid")" 2>/dev/null; then
            log "mlflow server exited; its log:"; tail -20 "$DIR/mlflow.log" >&2; exit 1
        fi
        sleep 1
    done
    cat >"$DIR/env" <<EOF
export GATED_BERT_SERVICES_DIR=$DIR
export GATED_BERT_TEST_POSTGRES=$base/optuna
export GATED_BERT_TEST_MLFLOW=http://127.0.0.1:$mlflow_port
EOF
    echo "$bin" >"$DIR/pg_bin"
    log "PostgreSQL on 127.0.0.1:$pg_port, MLflow server on http://127.0.0.1:$mlflow_port (folder $DIR)"
    print_env
}

stop_quietly_if_dead() {  # true if the services in $DIR are still up
    [ -f "$DIR/mlflow.pid" ] && kill -0 "$(cat "$DIR/mlflow.pid")" 2>/dev/null
}

pg() {  # pg stop|start: stop or start the database only (tests of a lost connection)
    local bin; bin=$(cat "$DIR/pg_bin")
    if [ "$1" = stop ]; then
        as_owner "$bin/pg_ctl" -D "$DIR/pg" -m fast -w stop >&2
    else
        as_owner "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/socket/postgres.log" -w start >&2
    fi
}

stop() {
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
    pg-stop) pg stop ;;
    pg-start) pg start ;;
    *) echo "usage: $0 start|stop|env|pg-stop|pg-start" >&2; exit 2 ;;
esac
