#!/usr/bin/env bash
# Private OpenSSH server for the servicevm test suites (the ssh management
# driver's functional tests).
#
#   tools/sshd.sh start|stop|status|env
#
# Listens on 127.0.0.1:${SERVICEVM_SSHD_PORT:-25222} only, with its own
# sshd_config, throw-away ed25519 host key, pid file and log under
# ${SERVICEVM_TEST_STATE:-<repo>/.ci/work}/sshd. Logins: the local user
# svmtest only, with the generated key pair (id_ed25519 in the state dir)
# or with a random password kept in the state dir (printed by `env`).
# Installs Debian's openssh-server when /usr/sbin/sshd is missing without
# starting the system's sshd. Needs root (it creates the user). Every step
# is idempotent.
#
# SERVICEVM_SSHD_SUBSYSTEM="<name> <command>" adds that ssh subsystem (the
# NETCONF server of tools/netconfd.sh).
#
# `env` prints, as NAME=value lines: SERVICEVM_SSHD_HOST, _PORT, _USER,
# _PASSWORD, _KEY (private key path), _HOST_KEY (host public key path),
# _CONFIG (the sshd_config), _DIR, _PID_FILE and _LOG.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SERVICEVM_TEST_STATE:-${REPO_ROOT}/.ci/work}"
SSHD_HOST=127.0.0.1
SSHD_PORT="${SERVICEVM_SSHD_PORT:-25222}"
SSHD_USER="${SERVICEVM_SSHD_USER:-svmtest}"
SSHD_BIN=/usr/sbin/sshd
START_TIMEOUT="${SERVICEVM_SSHD_START_TIMEOUT:-30}"
STOP_TIMEOUT="${SERVICEVM_SSHD_STOP_TIMEOUT:-10}"

log() { printf 'sshd.sh: %s\n' "$*" >&2; }

log_tail() {
    if [[ -n "${SSHD_LOG:-}" && -s "${SSHD_LOG}" ]]; then
        printf -- '---- last 40 lines of %s ----\n' "${SSHD_LOG}" >&2
        tail -n 40 "${SSHD_LOG}" >&2 || true
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
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
}

is_root() { [[ "$(id -u)" == 0 ]]; }

setup_paths() {
    SSHD_DIR="${STATE_DIR}/sshd"
    # sshd reads AuthorizedKeysFile as the logging-in user: that user must
    # be able to reach it. A state dir under /root (mode 0700) is not
    # reachable, so fall back to a stable dir in /tmp (as postgres.sh does).
    if is_root && id -u nobody >/dev/null 2>&1 \
            && ! runuser -u nobody -- test -x "${STATE_DIR}" 2>/dev/null; then
        local key
        key="$(printf '%s' "${STATE_DIR}" | sha256sum | cut -c1-12)"
        SSHD_DIR="/tmp/servicevm-sshd-${key}"
    fi
    SSHD_CONFIG="${SSHD_DIR}/sshd_config"
    SSHD_PID_FILE="${SSHD_DIR}/sshd.pid"
    SSHD_LOG="${SSHD_DIR}/sshd.log"
    HOST_KEY="${SSHD_DIR}/ssh_host_ed25519_key"
    USER_KEY="${SSHD_DIR}/id_ed25519"
    AUTHORIZED_KEYS="${SSHD_DIR}/authorized_keys"
    PASSWORD_FILE="${SSHD_DIR}/password"
}

with_policy_rc_d() {
    # Keep the package's postinst from starting the system's sshd: we only
    # need the binary. Only touch policy-rc.d when none is installed.
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
    if [[ -x "${SSHD_BIN}" ]] && command -v ssh-keygen >/dev/null; then
        return 0
    fi
    is_root || fail "${SSHD_BIN} is missing and we are not root: apt-get install openssh-server"
    command -v apt-get >/dev/null || fail "${SSHD_BIN} is missing and there is no apt-get to install openssh-server"
    log "${SSHD_BIN} not found, installing Debian's openssh-server package"
    local t0=${SECONDS}
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq || fail "apt-get update failed"
    with_policy_rc_d timeout 1200 apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
        openssh-server >/dev/null || fail "apt-get install openssh-server failed"
    [[ -x "${SSHD_BIN}" ]] || fail "openssh-server installed but ${SSHD_BIN} is missing"
    log "installed openssh-server in $((SECONDS - t0))s"
}

ensure_dir() {
    if [[ -L "${SSHD_DIR}" ]]; then
        fail "${SSHD_DIR} is a symlink; remove it"
    fi
    mkdir -p "${SSHD_DIR}"
    if [[ "$(stat -c %u "${SSHD_DIR}")" != "$(id -u)" ]]; then
        fail "${SSHD_DIR} belongs to another user; remove it"
    fi
    # Others must reach authorized_keys (see setup_paths).
    chmod 0755 "${SSHD_DIR}"
}

ensure_keys() {
    if [[ ! -s "${HOST_KEY}" || ! -s "${HOST_KEY}.pub" ]]; then
        rm -f "${HOST_KEY}" "${HOST_KEY}.pub"
        ssh-keygen -q -t ed25519 -N '' -C servicevm-test-host -f "${HOST_KEY}" \
            || fail "ssh-keygen (host key) failed"
    fi
    if [[ ! -s "${USER_KEY}" || ! -s "${USER_KEY}.pub" ]]; then
        rm -f "${USER_KEY}" "${USER_KEY}.pub"
        ssh-keygen -q -t ed25519 -N '' -C servicevm-test-user -f "${USER_KEY}" \
            || fail "ssh-keygen (user key) failed"
    fi
    chmod 0600 "${HOST_KEY}" "${USER_KEY}"
    cp "${USER_KEY}.pub" "${AUTHORIZED_KEYS}"
    chmod 0644 "${AUTHORIZED_KEYS}"
    if [[ ! -s "${PASSWORD_FILE}" ]]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"${PASSWORD_FILE}")
    fi
    chmod 0600 "${PASSWORD_FILE}"
}

ensure_user() {
    is_root || fail "creating the test user ${SSHD_USER} needs root"
    if ! id -u "${SSHD_USER}" >/dev/null 2>&1; then
        log "creating the local test user ${SSHD_USER}"
        useradd --create-home --shell /bin/sh "${SSHD_USER}" \
            || fail "useradd ${SSHD_USER} failed"
    fi
    # A random password, so that no other sshd of this host lets anyone in
    # as this user with a password known in advance.
    printf '%s:%s\n' "${SSHD_USER}" "$(cat "${PASSWORD_FILE}")" | chpasswd \
        || fail "chpasswd ${SSHD_USER} failed"
}

write_config() {
    # Rewritten on every start so that port and path changes take effect.
    cat >"${SSHD_CONFIG}" <<EOF
# Managed by tools/sshd.sh -- test server only, loopback only.
Port ${SSHD_PORT}
ListenAddress ${SSHD_HOST}
HostKey ${HOST_KEY}
PidFile ${SSHD_PID_FILE}
AuthorizedKeysFile ${AUTHORIZED_KEYS}
AllowUsers ${SSHD_USER}
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
LoginGraceTime 30
MaxAuthTries 6
MaxSessions 32
MaxStartups 100:30:200
LogLevel VERBOSE
EOF
    if [[ -n "${SERVICEVM_SSHD_SUBSYSTEM:-}" ]]; then
        # e.g. "netconf /usr/sbin/netconf-subsystem ..." (tools/netconfd.sh)
        printf 'Subsystem %s\n' "${SERVICEVM_SSHD_SUBSYSTEM}" >>"${SSHD_CONFIG}"
    fi
    chmod 0644 "${SSHD_CONFIG}"
}

our_pid() {
    # The pid of our sshd (from its pid file), if it runs; empty otherwise.
    local pid
    [[ -f "${SSHD_PID_FILE}" ]] || return 0
    pid="$(tr -dc '0-9' <"${SSHD_PID_FILE}")"
    [[ -n "${pid}" ]] || return 0
    # Guard against a reused pid: it must be sshd with our config.
    if [[ "$(readlink "/proc/${pid}/exe" 2>/dev/null || true)" == "${SSHD_BIN}" ]] \
            && tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -qF -- "${SSHD_CONFIG}"; then
        echo "${pid}"
    fi
}

alive() {
    # Running, and not a zombie waiting for init to reap it.
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
    [[ -n "${state}" && "${state}" != Z ]]
}

answers() {
    # The port answers with an SSH banner.
    local banner
    # shellcheck disable=SC2016 # $1/$2 expand in the inner bash
    banner="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && head -c 4 <&3' _ \
        "${SSHD_HOST}" "${SSHD_PORT}" 2>/dev/null || true)"
    [[ "${banner}" == SSH- ]]
}

port_in_use() {
    ss -Hltn "sport = :${SSHD_PORT}" 2>/dev/null | grep -q .
}

start() {
    ensure_installed
    setup_paths
    local pid
    pid="$(our_pid)"
    if [[ -n "${pid}" ]]; then
        if answers; then
            log "already running on ${SSHD_HOST}:${SSHD_PORT} (pid ${pid}, dir ${SSHD_DIR})"
            return 0
        fi
        log "running (pid ${pid}) but not on port ${SSHD_PORT}: restarting"
        stop
    fi
    if port_in_use; then
        fail "port ${SSHD_PORT} on ${SSHD_HOST} is already in use by another process (set SERVICEVM_SSHD_PORT)"
    fi
    local t0=${SECONDS}
    ensure_dir
    ensure_keys
    ensure_user
    write_config
    # sshd's privilege separation directory (the package makes it at boot).
    mkdir -p /run/sshd
    chmod 0755 /run/sshd
    local check
    if ! check="$("${SSHD_BIN}" -t -f "${SSHD_CONFIG}" 2>&1)"; then
        fail "sshd refuses ${SSHD_CONFIG}: ${check}"
    fi
    : >"${SSHD_LOG}"
    rm -f "${SSHD_PID_FILE}"
    log "starting on ${SSHD_HOST}:${SSHD_PORT} (dir ${SSHD_DIR}, log ${SSHD_LOG})"
    # -D: no daemonising, so that $! is sshd; -E: our log. Its stdio goes
    # nowhere: a caller reading our output must not wait for sshd.
    setsid "${SSHD_BIN}" -D -f "${SSHD_CONFIG}" -E "${SSHD_LOG}" \
        </dev/null >/dev/null 2>&1 &
    pid=$!
    echo "${pid}" >"${SSHD_PID_FILE}"
    local deadline=$((SECONDS + START_TIMEOUT))
    until answers; do
        alive "${pid}" || die "sshd (pid ${pid}) exited during start-up"
        ((SECONDS < deadline)) || die "sshd not answering on ${SSHD_HOST}:${SSHD_PORT} after ${START_TIMEOUT}s"
        sleep 0.1
    done
    log "ready in $((SECONDS - t0))s: ${SSHD_USER}@${SSHD_HOST}:${SSHD_PORT} (pid ${pid})"
}

stop() {
    setup_paths
    local pid
    pid="$(our_pid)"
    if [[ -z "${pid}" ]]; then
        rm -f "${SSHD_PID_FILE}"
        log "not running"
        return 0
    fi
    local t0=${SECONDS}
    kill -TERM "${pid}" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while alive "${pid}"; do
        if ((SECONDS >= deadline)); then
            log "sshd (pid ${pid}) still running ${STOP_TIMEOUT}s after SIGTERM: SIGKILL"
            kill -KILL "${pid}" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    ! alive "${pid}" || die "could not stop sshd (pid ${pid})"
    rm -f "${SSHD_PID_FILE}"
    log "stopped in $((SECONDS - t0))s"
}

status() {
    setup_paths
    local pid
    pid="$(our_pid)"
    if [[ -n "${pid}" ]] && answers; then
        echo "running: ${SSHD_HOST}:${SSHD_PORT} pid=${pid} dir=${SSHD_DIR}"
        return 0
    fi
    echo "not running"
    return 3
}

print_env() {
    setup_paths
    local password=""
    if [[ -r "${PASSWORD_FILE}" ]]; then
        password="$(cat "${PASSWORD_FILE}")"
    fi
    printf '%s\n' \
        "SERVICEVM_SSHD_HOST=${SSHD_HOST}" \
        "SERVICEVM_SSHD_PORT=${SSHD_PORT}" \
        "SERVICEVM_SSHD_USER=${SSHD_USER}" \
        "SERVICEVM_SSHD_PASSWORD=${password}" \
        "SERVICEVM_SSHD_KEY=${USER_KEY}" \
        "SERVICEVM_SSHD_HOST_KEY=${HOST_KEY}.pub" \
        "SERVICEVM_SSHD_CONFIG=${SSHD_CONFIG}" \
        "SERVICEVM_SSHD_DIR=${SSHD_DIR}" \
        "SERVICEVM_SSHD_PID_FILE=${SSHD_PID_FILE}" \
        "SERVICEVM_SSHD_LOG=${SSHD_LOG}"
}

lock() {
    # Concurrent starts and stops (e.g. two test workers) take turns.
    mkdir -p "${STATE_DIR}"
    exec 9>"${STATE_DIR}/sshd.lock"
    flock -w 120 9 || fail "another tools/sshd.sh holds ${STATE_DIR}/sshd.lock"
}

[[ $# -eq 1 ]] || usage
case "$1" in
    start) lock; start ;;
    stop) lock; stop ;;
    status) status ;;
    env) print_env ;;
    *) usage ;;
esac
