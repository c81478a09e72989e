#!/usr/bin/env bash
# Private RabbitMQ node for the servicevm test suites.
#
#   tools/rabbitmq.sh start|stop|status|url
#   tools/rabbitmq.sh ctl ARGS...     rabbitmqctl against the private node
#
# The node runs without systemd and never touches the system node: its name,
# data, logs, config, pid file, Erlang cookie (HOME) and epmd are all private
# and live under ${SERVICEVM_TEST_STATE:-<repo>/.ci/work}/rabbit. AMQP listens
# on 127.0.0.1:${SERVICEVM_RABBIT_PORT:-25672}, Erlang distribution on
# 127.0.0.1:${SERVICEVM_RABBIT_DIST_PORT:-25673} and a private epmd on
# 127.0.0.1:${SERVICEVM_EPMD_PORT:-24369}. `stop` kills the node and its epmd.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SERVICEVM_TEST_STATE:-${REPO_ROOT}/.ci/work}"
RMQ_DIR="${STATE_DIR}/rabbit"
RABBIT_PORT="${SERVICEVM_RABBIT_PORT:-25672}"
DIST_PORT="${SERVICEVM_RABBIT_DIST_PORT:-25673}"
EPMD_PORT="${SERVICEVM_EPMD_PORT:-24369}"
NODENAME="${SERVICEVM_RABBIT_NODENAME:-servicevm-test@localhost}"
RMQ_USER=servicevm
RMQ_PASSWORD=servicevm
START_TIMEOUT="${SERVICEVM_RABBIT_START_TIMEOUT:-120}"
STOP_TIMEOUT="${SERVICEVM_RABBIT_STOP_TIMEOUT:-60}"
CTL_TIMEOUT="${SERVICEVM_RABBITMQCTL_TIMEOUT:-120}"
# The node's own scripts (not the Debian wrappers in /usr/sbin, which su to
# the rabbitmq user and reset HOME, i.e. the cookie).
RMQ_BIN=/usr/lib/rabbitmq/bin
PID_FILE="${RMQ_DIR}/rabbit.pid"
STARTUP_LOG="${RMQ_DIR}/log/startup.log"

log() { printf 'rabbitmq.sh: %s\n' "$*" >&2; }

log_tail() {
    local f
    for f in "${STARTUP_LOG}" "${RMQ_DIR}/log/${NODENAME}.log"; do
        if [[ -s "${f}" ]]; then
            printf -- '---- last 40 lines of %s ----\n' "${f}" >&2
            tail -n 40 "${f}" >&2 || true
        fi
    done
    printf -- '---- end of logs ----\n' >&2
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
    echo "usage: $0 start|stop|status|url|ctl ARGS..." >&2
    exit 2
}

url() {
    printf 'rabbit://%s:%s@127.0.0.1:%s/\n' "${RMQ_USER}" "${RMQ_PASSWORD}" "${RABBIT_PORT}"
}

rabbit_env() {
    export RABBITMQ_NODENAME="${NODENAME}"
    export RABBITMQ_USE_LONGNAME=false
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="${RABBIT_PORT}"
    export RABBITMQ_DIST_PORT="${DIST_PORT}"
    export RABBITMQ_MNESIA_BASE="${RMQ_DIR}/mnesia"
    export RABBITMQ_LOG_BASE="${RMQ_DIR}/log"
    export RABBITMQ_CONFIG_FILE="${RMQ_DIR}/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="${RMQ_DIR}/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="${RMQ_DIR}/enabled_plugins"
    export RABBITMQ_PID_FILE="${PID_FILE}"
    # Do not read /etc/rabbitmq/rabbitmq-env.conf (system node settings).
    export RABBITMQ_CONF_ENV_FILE="${RMQ_DIR}/rabbitmq-env.conf"
    # Erlang distribution (node and CLI) on loopback only.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    # Private epmd, loopback only, so nothing is shared with a system node.
    export ERL_EPMD_PORT="${EPMD_PORT}"
    export ERL_EPMD_ADDRESS=127.0.0.1
    # The Erlang cookie is $HOME/.erlang.cookie for both node and CLI.
    export HOME="${RMQ_DIR}/home"
    export PATH="${RMQ_BIN}:${PATH}"
}

ctl() {
    timeout "${CTL_TIMEOUT}" "${RMQ_BIN}/rabbitmqctl" -n "${NODENAME}" "$@"
}

with_policy_rc_d() {
    # Keep the package's postinst from starting the system node: we only
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

stop_system_node() {
    # Only called right after we installed the package: if its postinst
    # started the system node anyway, stop it and the shared epmd (4369).
    if [[ -x /etc/init.d/rabbitmq-server ]] \
            && /etc/init.d/rabbitmq-server status >/dev/null 2>&1; then
        log "stopping the system rabbitmq-server started by the package"
        timeout 60 /etc/init.d/rabbitmq-server stop >/dev/null 2>&1 || true
    fi
    local pid
    if [[ -f /var/run/rabbitmq/pid ]]; then
        pid="$(cat /var/run/rabbitmq/pid 2>/dev/null || true)"
        if [[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null; then
            kill "${pid}" 2>/dev/null || true
        fi
    fi
    # Refuses (harmlessly) while other nodes are still registered.
    env -u ERL_EPMD_PORT epmd -kill >/dev/null 2>&1 || true
}

ensure_installed() {
    if [[ -x "${RMQ_BIN}/rabbitmq-server" && -x "${RMQ_BIN}/rabbitmqctl" ]]; then
        return 0
    fi
    [[ "$(id -u)" == 0 ]] || die "RabbitMQ is not installed and we are not root: apt-get install rabbitmq-server"
    log "RabbitMQ not found, installing Debian's rabbitmq-server package"
    local t0=${SECONDS}
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq || die "apt-get update failed"
    with_policy_rc_d timeout 1200 apt-get install -y -qq -o DPkg::Lock::Timeout=300 rabbitmq-server >/dev/null \
        || die "apt-get install rabbitmq-server failed"
    [[ -x "${RMQ_BIN}/rabbitmq-server" ]] || die "rabbitmq-server installed but ${RMQ_BIN}/rabbitmq-server is missing"
    stop_system_node
    log "installed RabbitMQ in $((SECONDS - t0))s"
}

write_config() {
    mkdir -p "${RMQ_DIR}/mnesia" "${RMQ_DIR}/log" "${RMQ_DIR}/home"
    chmod 0700 "${RMQ_DIR}/home"
    local cookie="${RMQ_DIR}/home/.erlang.cookie"
    if [[ ! -s "${cookie}" ]]; then
        (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -dc 0-9a-f >"${cookie}")
    fi
    chmod 0400 "${cookie}"
    : >"${RMQ_DIR}/rabbitmq-env.conf"
    echo '[].' >"${RMQ_DIR}/enabled_plugins"
    # default_* create the user when the node boots on an empty database;
    # start() also (re)creates it on an existing one.
    cat >"${RMQ_DIR}/rabbitmq.conf" <<EOF
# Managed by tools/rabbitmq.sh -- private test node.
loopback_users = none
default_vhost = /
default_user = ${RMQ_USER}
default_pass = ${RMQ_PASSWORD}
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = info
EOF
}

# PIDs of processes started from this state dir (node, its epmd and helper
# ports), recognised by the RABBITMQ_MNESIA_BASE in their environment.
our_pids() {
    local p comm
    for p in /proc/[0-9]*; do
        comm="$(cat "${p}/comm" 2>/dev/null || true)"
        case "${comm}" in
            beam.smp | epmd | erl_child_setup | inet_gethost | rabbitmq-server) ;;
            *) continue ;;
        esac
        if { tr '\0' '\n' <"${p}/environ"; } 2>/dev/null \
                | grep -qxF "RABBITMQ_MNESIA_BASE=${RMQ_DIR}/mnesia"; then
            printf '%s\n' "${p#/proc/}"
        fi
    done
}

node_pid() {
    # The node's beam pid from its pid file, if that process is ours.
    local pid
    [[ -f "${PID_FILE}" ]] || return 1
    pid="$(cat "${PID_FILE}" 2>/dev/null || true)"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    [[ "$(cat "/proc/${pid}/comm" 2>/dev/null || true)" == beam.smp ]] || return 1
    { tr '\0' '\n' <"/proc/${pid}/environ"; } 2>/dev/null \
        | grep -qxF "RABBITMQ_MNESIA_BASE=${RMQ_DIR}/mnesia" || return 1
    printf '%s\n' "${pid}"
}

node_alive() {
    node_pid >/dev/null && ctl -q ping >/dev/null 2>&1
}

port_in_use() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

ensure_user() {
    if ! ctl -q authenticate_user "${RMQ_USER}" "${RMQ_PASSWORD}" >/dev/null 2>&1; then
        if ctl -q list_users 2>/dev/null | awk '{print $1}' | grep -qxF "${RMQ_USER}"; then
            ctl -q change_password "${RMQ_USER}" "${RMQ_PASSWORD}" >/dev/null
        else
            ctl -q add_user "${RMQ_USER}" "${RMQ_PASSWORD}" >/dev/null
        fi
        ctl -q set_user_tags "${RMQ_USER}" administrator >/dev/null
    fi
    ctl -q set_permissions -p / "${RMQ_USER}" '.*' '.*' '.*' >/dev/null
}

start() {
    ensure_installed
    rabbit_env
    if node_alive; then
        log "already running: ${NODENAME} on 127.0.0.1:${RABBIT_PORT}"
        ensure_user || die "could not create user ${RMQ_USER}"
        return 0
    fi
    # A node of ours that does not answer (crashed, lost its epmd, started
    # with other ports) would block the name and ports: replace it.
    if [[ -n "$(our_pids)" ]]; then
        log "a node from ${RMQ_DIR} is running but not answering: stopping it"
        stop_processes
    fi
    local port
    for port in "${RABBIT_PORT}" "${DIST_PORT}"; do
        if port_in_use "${port}"; then
            fail "port ${port} is already in use by another process (see SERVICEVM_RABBIT_PORT / SERVICEVM_RABBIT_DIST_PORT)"
        fi
    done
    local t0=${SECONDS}
    write_config
    rm -f "${PID_FILE}"
    log "starting ${NODENAME} on 127.0.0.1:${RABBIT_PORT} (state ${RMQ_DIR})"
    # Own session, stdin closed: survives the calling shell, logs to a file.
    setsid nohup "${RMQ_BIN}/rabbitmq-server" </dev/null >"${STARTUP_LOG}" 2>&1 &
    local launcher=$!
    local deadline=$((SECONDS + START_TIMEOUT)) left
    while :; do
        if ! kill -0 "${launcher}" 2>/dev/null && ! node_pid >/dev/null; then
            die "rabbitmq-server exited during startup"
        fi
        left=$((deadline - SECONDS))
        ((left > 0)) || { stop_processes; die "node did not start within ${START_TIMEOUT}s"; }
        if node_pid >/dev/null \
                && ctl -q await_startup --timeout "${left}" >/dev/null 2>&1; then
            break
        fi
        sleep 1
    done
    ensure_user || { stop_processes; die "could not create user ${RMQ_USER}"; }
    log "ready in $((SECONDS - t0))s: $(url)"
}

stop_processes() {
    # SIGTERM makes the Erlang VM shut down gracefully (init:stop/0).
    local pid pids deadline
    if pid="$(node_pid)"; then
        kill -TERM "${pid}" 2>/dev/null || true
        deadline=$((SECONDS + STOP_TIMEOUT))
        while kill -0 "${pid}" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                log "node did not stop within ${STOP_TIMEOUT}s, killing it"
                kill -KILL "${pid}" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    # Then the private epmd and anything else left from this state dir.
    ERL_EPMD_PORT="${EPMD_PORT}" epmd -kill >/dev/null 2>&1 || true
    deadline=$((SECONDS + 10))
    while pids="$(our_pids)" && [[ -n "${pids}" ]]; do
        if ((SECONDS >= deadline)); then
            # shellcheck disable=SC2086 # word splitting of the pid list
            kill -KILL ${pids} 2>/dev/null || true
            sleep 0.5
            pids="$(our_pids)"
            [[ -z "${pids}" ]] || die "could not kill processes: ${pids//$'\n'/ }"
            break
        fi
        # shellcheck disable=SC2086
        kill -TERM ${pids} 2>/dev/null || true
        sleep 0.3
    done
    rm -f "${PID_FILE}"
}

stop() {
    rabbit_env
    if [[ -z "$(our_pids)" ]]; then
        log "not running"
        return 0
    fi
    local t0=${SECONDS}
    stop_processes
    log "stopped in $((SECONDS - t0))s"
}

status() {
    if [[ -x "${RMQ_BIN}/rabbitmqctl" ]]; then
        rabbit_env
        if node_alive; then
            echo "running: ${NODENAME} pid=$(node_pid) amqp=127.0.0.1:${RABBIT_PORT} state=${RMQ_DIR}"
            return 0
        fi
    fi
    echo "not running"
    return 3
}

[[ $# -ge 1 ]] || usage
case "$1" in
    start) [[ $# -eq 1 ]] || usage; start ;;
    stop) [[ $# -eq 1 ]] || usage; stop ;;
    status) [[ $# -eq 1 ]] || usage; status ;;
    url) [[ $# -eq 1 ]] || usage; url ;;
    ctl)
        shift
        [[ -x "${RMQ_BIN}/rabbitmqctl" ]] || die "RabbitMQ is not installed"
        rabbit_env
        ctl "$@"
        ;;
    *) usage ;;
esac
