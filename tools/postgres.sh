#!/usr/bin/env bash
# Private PostgreSQL server for the servicevm test suites.
#
#   tools/postgres.sh start|stop|status|url
#
# Listens on 127.0.0.1:${SERVICEVM_PG_PORT:-25432} only, keeps its data,
# socket and log under ${SERVICEVM_TEST_STATE:-<repo>/.ci/work}/pg and is
# tuned for throw-away test data (fsync=off ...). Creates the superuser role
# servicevm/servicevm and the database servicevm. Every step is idempotent.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SERVICEVM_TEST_STATE:-${REPO_ROOT}/.ci/work}"
PG_PORT="${SERVICEVM_PG_PORT:-25432}"
PG_USER=servicevm
PG_PASSWORD=servicevm
PG_DB=servicevm
START_TIMEOUT="${SERVICEVM_PG_START_TIMEOUT:-60}"
STOP_TIMEOUT="${SERVICEVM_PG_STOP_TIMEOUT:-60}"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

log_tail() {
    if [[ -n "${PG_LOG:-}" && -f "${PG_LOG}" ]]; then
        printf -- '---- last 40 lines of %s ----\n' "${PG_LOG}" >&2
        tail -n 40 "${PG_LOG}" >&2 || true
        printf -- '---- end of log ----\n' >&2
    fi
}

die() {
    log "ERROR: $*"
    log_tail
    exit 1
}

fail() {
    # An error that no server log can explain.
    log "ERROR: $*"
    exit 1
}

usage() {
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
}

url() {
    printf 'postgresql+psycopg2://%s:%s@127.0.0.1:%s/%s\n' \
        "${PG_USER}" "${PG_PASSWORD}" "${PG_PORT}" "${PG_DB}"
}

find_bindir() {
    # Highest installed major version, empty if none.
    local f
    f="$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 || true)"
    if [[ -n "${f}" ]]; then
        dirname "${f}"
    fi
}

with_policy_rc_d() {
    # Keep the package's postinst from starting the system cluster: we only
    # need the binaries. Only touch policy-rc.d when none is installed.
    local created=0 rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        created=1
    fi
    "$@" || rc=$?
    if [[ "${created}" == 1 ]]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    return "${rc}"
}

ensure_installed() {
    PG_BIN="$(find_bindir)"
    if [[ -n "${PG_BIN}" ]]; then
        return 0
    fi
    [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not installed and we are not root: apt-get install postgresql"
    log "PostgreSQL not found, installing Debian's postgresql package"
    local t0=${SECONDS}
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq || die "apt-get update failed"
    with_policy_rc_d timeout 1200 apt-get install -y -qq -o DPkg::Lock::Timeout=300 postgresql >/dev/null \
        || die "apt-get install postgresql failed"
    PG_BIN="$(find_bindir)"
    [[ -n "${PG_BIN}" ]] || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb"
    log "installed PostgreSQL in $((SECONDS - t0))s (${PG_BIN})"
}

as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

setup_paths() {
    PG_DIR="${STATE_DIR}/pg"
    # The postgres user must be able to reach the state dir; a repo under
    # /root (mode 0700) is not reachable, so fall back to a stable /tmp dir.
    mkdir -p "${STATE_DIR}"
    if [[ "$(id -u)" == 0 ]] && ! runuser -u postgres -- test -x "${STATE_DIR}"; then
        local key
        key="$(printf '%s' "${STATE_DIR}" | sha256sum | cut -c1-12)"
        PG_DIR="/tmp/servicevm-pg-${key}"
    fi
    PG_DATA="${PG_DIR}/data"
    PG_LOG="${PG_DIR}/postgres.log"
    PG_SOCKET_DIR="${PG_DIR}"
}

is_running() {
    [[ -n "${PG_BIN:-}" && -f "${PG_DATA}/PG_VERSION" ]] || return 1
    as_pg "${PG_BIN}/pg_ctl" -D "${PG_DATA}" status >/dev/null 2>&1
}

psql_super() {
    # Superuser access over the private unix socket (trust auth).
    as_pg "${PG_BIN}/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "${PG_SOCKET_DIR}" -p "${PG_PORT}" -U postgres -d postgres
}

init_cluster() {
    mkdir -p "${PG_DIR}"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres:postgres "${PG_DIR}"
    fi
    chmod 0700 "${PG_DIR}"
    if [[ ! -f "${PG_DATA}/PG_VERSION" ]]; then
        log "initdb ${PG_DATA}"
        rm -rf "${PG_DATA}"
        as_pg "${PG_BIN}/initdb" -D "${PG_DATA}" -U postgres -E UTF8 \
            --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
            --no-instructions >"${PG_DIR}/initdb.log" 2>&1 \
            || { PG_LOG="${PG_DIR}/initdb.log"; die "initdb failed"; }
    fi
    if ! grep -q "^include_if_exists = 'servicevm.conf'" "${PG_DATA}/postgresql.conf"; then
        echo "include_if_exists = 'servicevm.conf'" >>"${PG_DATA}/postgresql.conf"
    fi
    # Rewritten on every start so port/dir changes take effect.
    as_pg tee "${PG_DATA}/servicevm.conf" >/dev/null <<EOF
# Managed by tools/postgres.sh -- test server only, do not use for real data.
listen_addresses = '127.0.0.1'
port = ${PG_PORT}
unix_socket_directories = '${PG_SOCKET_DIR}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

port_in_use() {
    ss -Hltn "sport = :${PG_PORT}" 2>/dev/null | grep -q .
}

ensure_role_and_db() {
    psql_super >/dev/null <<EOF
SELECT format('CREATE ROLE %I LOGIN SUPERUSER', '${PG_USER}')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${PG_USER}')
\\gexec
ALTER ROLE ${PG_USER} WITH LOGIN SUPERUSER PASSWORD '${PG_PASSWORD}';
SELECT format('CREATE DATABASE %I OWNER %I', '${PG_DB}', '${PG_USER}')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '${PG_DB}')
\\gexec
EOF
}

start() {
    ensure_installed
    setup_paths
    if is_running; then
        if "${PG_BIN}/pg_isready" -q -h 127.0.0.1 -p "${PG_PORT}"; then
            log "already running on 127.0.0.1:${PG_PORT} (data ${PG_DATA})"
            ensure_role_and_db || die "could not create role/database"
            return 0
        fi
        log "running from ${PG_DATA} but not on port ${PG_PORT}: restarting"
        as_pg "${PG_BIN}/pg_ctl" -D "${PG_DATA}" -m fast -w -t "${STOP_TIMEOUT}" stop >/dev/null \
            || die "could not stop the running server"
    fi
    if port_in_use; then
        fail "port ${PG_PORT} on 127.0.0.1 is already in use by another process (set SERVICEVM_PG_PORT)"
    fi
    local t0=${SECONDS}
    init_cluster
    log "starting on 127.0.0.1:${PG_PORT} (data ${PG_DATA}, log ${PG_LOG})"
    if ! as_pg "${PG_BIN}/pg_ctl" -D "${PG_DATA}" -l "${PG_LOG}" \
            -w -t "${START_TIMEOUT}" start >/dev/null; then
        die "PostgreSQL did not start within ${START_TIMEOUT}s"
    fi
    # pg_ctl -w waits for connections, but be explicit (bounded) anyway.
    local deadline=$((SECONDS + START_TIMEOUT))
    until "${PG_BIN}/pg_isready" -q -h 127.0.0.1 -p "${PG_PORT}"; do
        ((SECONDS < deadline)) || die "PostgreSQL not accepting TCP connections after ${START_TIMEOUT}s"
        sleep 0.2
    done
    ensure_role_and_db || die "could not create role/database"
    log "ready in $((SECONDS - t0))s: $(url)"
}

stop() {
    PG_BIN="$(find_bindir)"
    setup_paths
    if [[ -z "${PG_BIN}" ]] || ! is_running; then
        log "not running"
        return 0
    fi
    local t0=${SECONDS}
    if ! as_pg "${PG_BIN}/pg_ctl" -D "${PG_DATA}" -m fast -w -t "${STOP_TIMEOUT}" stop >/dev/null; then
        log "fast shutdown timed out after ${STOP_TIMEOUT}s, trying immediate"
        as_pg "${PG_BIN}/pg_ctl" -D "${PG_DATA}" -m immediate -w -t 30 stop >/dev/null \
            || die "could not stop PostgreSQL (data ${PG_DATA})"
    fi
    log "stopped in $((SECONDS - t0))s"
}

status() {
    PG_BIN="$(find_bindir)"
    setup_paths
    if [[ -n "${PG_BIN}" ]] && is_running \
            && "${PG_BIN}/pg_isready" -q -h 127.0.0.1 -p "${PG_PORT}"; then
        echo "running: 127.0.0.1:${PG_PORT} data=${PG_DATA}"
        return 0
    fi
    echo "not running"
    return 3
}

[[ $# -eq 1 ]] || usage
case "$1" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    url) url ;;
    *) usage ;;
esac
