#!/usr/bin/env bash
# Private NETCONF server for the servicevm test suites (the netconf
# management driver's functional tests).
#
#   tools/netconfd.sh start|stop|status|env
#
# Debian's netconfd (yuma123; installed with apt when missing) loads the
# test model tools/netconf/svm-test-firewall.yang, with a candidate and a
# running datastore (confirmed commit, lock, validate), and listens on its
# own unix socket. A private OpenSSH sshd (tools/sshd.sh, with its own
# state dir and host and user keys) on 127.0.0.1:${SERVICEVM_NETCONF_PORT:-
# 25830} hands the "netconf" ssh subsystem to it (netconf-subsystem), as
# in a real yuma123 deployment. Logins: the local user svmnetconf
# (netconfd's superuser; not the ssh tests' user, whose password
# tools/sshd.sh sets), with the key pair or password of its sshd. State under
# /tmp/servicevm-netconfd-<hash of the state dir> (the subsystem runs as
# the test user and must reach the socket). Needs root.
#
# `env` prints SERVICEVM_NETCONF_HOST, _PORT, _USER, _KEY, _PASSWORD,
# _HOST_KEY, _LOG (netconfd's) and _DIR.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SERVICEVM_TEST_STATE:-${REPO_ROOT}/.ci/work}"
NC_PORT="${SERVICEVM_NETCONF_PORT:-25830}"
NC_USER="${SERVICEVM_NETCONF_USER:-svmnetconf}"
NETCONFD=/usr/sbin/netconfd
SUBSYSTEM=/usr/sbin/netconf-subsystem
MODEL="${REPO_ROOT}/tools/netconf/svm-test-firewall.yang"
KEY="$(printf '%s' "${STATE_DIR}" | sha256sum | cut -c1-12)"
NC_DIR="/tmp/servicevm-netconfd-${KEY}"
SOCKET="${NC_DIR}/ncxserver.sock"
PID_FILE="${NC_DIR}/netconfd.pid"
LOG_FILE="${NC_DIR}/netconfd.log"
START_TIMEOUT="${SERVICEVM_NETCONF_START_TIMEOUT:-30}"

log() { printf 'netconfd.sh: %s\n' "$*" >&2; }

fail() {
    log "ERROR: $*"
    if [[ -s "${LOG_FILE}" ]]; then
        printf -- '---- last 30 lines of %s ----\n' "${LOG_FILE}" >&2
        tail -n 30 "${LOG_FILE}" >&2 || true
    fi
    exit 1
}

usage() {
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
}

# The sshd in front of netconfd: tools/sshd.sh with a state dir, port and
# subsystem of its own.
sshd() {
    SERVICEVM_TEST_STATE="${NC_DIR}/sshd-state" \
        SERVICEVM_SSHD_PORT="${NC_PORT}" SERVICEVM_SSHD_USER="${NC_USER}" \
        SERVICEVM_SSHD_SUBSYSTEM="netconf ${SUBSYSTEM} --ncxserver-sockname=${NC_PORT}@${SOCKET}" \
        bash "${REPO_ROOT}/tools/sshd.sh" "$@"
}

ensure_installed() {
    if [[ -x "${NETCONFD}" && -x "${SUBSYSTEM}" ]]; then
        return 0
    fi
    [[ "$(id -u)" == 0 ]] || fail "${NETCONFD} is missing and we are not root: apt-get install netconfd"
    log "${NETCONFD} not found, installing Debian's netconfd package"
    local t0=${SECONDS}
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 1200 apt-get install -y -qq -o DPkg::Lock::Timeout=300 netconfd >/dev/null; then
        timeout 600 apt-get update -qq || fail "apt-get update failed"
        timeout 1200 apt-get install -y -qq -o DPkg::Lock::Timeout=300 netconfd >/dev/null \
            || fail "apt-get install netconfd failed"
    fi
    [[ -x "${NETCONFD}" ]] || fail "netconfd installed but ${NETCONFD} is missing"
    log "installed netconfd in $((SECONDS - t0))s"
}

our_pid() {
    local pid
    [[ -f "${PID_FILE}" ]] || return 0
    pid="$(tr -dc '0-9' <"${PID_FILE}")"
    [[ -n "${pid}" ]] || return 0
    if [[ "$(readlink "/proc/${pid}/exe" 2>/dev/null || true)" == "${NETCONFD}" ]] \
            && tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -qF -- "${SOCKET}"; then
        echo "${pid}"
    fi
}

start_netconfd() {
    local pid
    pid="$(our_pid)"
    if [[ -n "${pid}" && -S "${SOCKET}" ]]; then
        log "netconfd already running (pid ${pid})"
        return 0
    fi
    [[ -z "${pid}" ]] || kill -KILL "${pid}" 2>/dev/null || true
    mkdir -p "${NC_DIR}/home/data"
    chmod 0755 "${NC_DIR}"
    rm -f "${SOCKET}" "${PID_FILE}"
    : >"${LOG_FILE}"
    # --no-startup: every start begins with an empty configuration.
    HOME="${NC_DIR}/home" setsid "${NETCONFD}" \
        --module="${MODEL}" --no-startup --superuser="${NC_USER}" \
        --port="${NC_PORT}" --ncxserver-sockname="${SOCKET}" \
        --yuma-home="${NC_DIR}/home" --log="${LOG_FILE}" --log-level=info \
        </dev/null >/dev/null 2>&1 8>&- &
    pid=$!
    echo "${pid}" >"${PID_FILE}"
    local deadline=$((SECONDS + START_TIMEOUT))
    until [[ -S "${SOCKET}" ]]; do
        kill -0 "${pid}" 2>/dev/null || fail "netconfd (pid ${pid}) exited during start-up"
        ((SECONDS < deadline)) || fail "netconfd made no socket after ${START_TIMEOUT}s"
        sleep 0.1
    done
    log "netconfd running (pid ${pid}, socket ${SOCKET})"
}

stop_netconfd() {
    local pid
    pid="$(our_pid)"
    if [[ -n "${pid}" ]]; then
        kill -TERM "${pid}" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "${pid}" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "${pid}" 2>/dev/null || true
    fi
    rm -f "${PID_FILE}" "${SOCKET}"
}

start() {
    local t0=${SECONDS}
    ensure_installed
    start_netconfd
    sshd start
    log "ready in $((SECONDS - t0))s: NETCONF over ssh on 127.0.0.1:${NC_PORT}"
}

stop() {
    sshd stop || true
    stop_netconfd
    log "stopped"
}

status() {
    if [[ -n "$(our_pid)" && -S "${SOCKET}" ]] && sshd status >/dev/null 2>&1; then
        echo "running: 127.0.0.1:${NC_PORT} netconfd pid=$(our_pid) dir=${NC_DIR}"
        return 0
    fi
    echo "not running"
    return 3
}

print_env() {
    local line
    while IFS= read -r line; do
        case "${line}" in
            SERVICEVM_SSHD_HOST=* | SERVICEVM_SSHD_PORT=* | SERVICEVM_SSHD_USER=* | \
                SERVICEVM_SSHD_KEY=* | SERVICEVM_SSHD_PASSWORD=* | SERVICEVM_SSHD_HOST_KEY=*)
                printf 'SERVICEVM_NETCONF_%s\n' "${line#SERVICEVM_SSHD_}" ;;
        esac
    done < <(sshd env)
    printf '%s\n' "SERVICEVM_NETCONF_LOG=${LOG_FILE}" "SERVICEVM_NETCONF_DIR=${NC_DIR}"
}

lock() {
    mkdir -p "${STATE_DIR}"
    exec 8>"${STATE_DIR}/netconfd.lock"
    flock -w 120 8 || fail "another tools/netconfd.sh holds ${STATE_DIR}/netconfd.lock"
}

[[ $# -eq 1 ]] || usage
case "$1" in
    start) lock; start ;;
    stop) lock; stop ;;
    status) status ;;
    env) print_env ;;
    *) usage ;;
esac
