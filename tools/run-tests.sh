#!/usr/bin/env bash
# Run the whole servicevm test suite (what the README and CI run).
#
#   tools/run-tests.sh [FILTER...]
#
# 1. tools/install.sh --test
# 2. start the private PostgreSQL and RabbitMQ servers (tools/postgres.sh,
#    tools/rabbitmq.sh; stopped again on exit unless they were already
#    running or SERVICEVM_KEEP_SERVERS=1; if a default port is held by
#    something else, a free one nearby is used) and export
#    SERVICEVM_TEST_DB_URL and SERVICEVM_TEST_TRANSPORT_URL
# 3. stestr over servicevm/tests/unit, then servicevm/tests/functional,
#    then (after starting the local OpenStack cloud, tools/minicloud.sh,
#    unless SERVICEVM_SKIP_CLOUD=1) servicevm/tests/integration (all always
#    run; FILTERs are passed to each as stestr test filters)
# 4. a summary whose last line is "N passed, N failed[, N skipped]"
#
# Exits non-zero if any test failed, a suite could not be loaded, or no test
# ran at all. Each suite keeps its stestr repository under
# ${SERVICEVM_TEST_STATE:-<repo>/.ci/work}/stestr/<suite>, e.g.
#   .venv/bin/stestr -u .ci/work/stestr/unit last
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
export SERVICEVM_TEST_STATE="${SERVICEVM_TEST_STATE:-${REPO_ROOT}/.ci/work}"
STATE_DIR="${SERVICEVM_TEST_STATE}"
VENV="${REPO_ROOT}/.venv"
SUITES=(unit functional integration)
FILTERS=("$@")
# Bound on one suite's stestr run (CI gives the whole job 90 minutes).
SUITE_TIMEOUT="${SERVICEVM_SUITE_TIMEOUT:-2400}"
# Per-test timeout honoured by oslotest.base.BaseTestCase.
export OS_TEST_TIMEOUT="${OS_TEST_TIMEOUT:-300}"
# Keep what tests print and log with the test: shown only when it fails.
export OS_STDOUT_CAPTURE="${OS_STDOUT_CAPTURE:-1}"
export OS_STDERR_CAPTURE="${OS_STDERR_CAPTURE:-1}"
export OS_LOG_CAPTURE="${OS_LOG_CAPTURE:-1}"

T_START=${SECONDS}
PHASE_NAME=""
PHASE_T0=0
PHASE_LOG=()

phase() {
    # End the current phase (if any) and start a new one.
    if [[ -n "${PHASE_NAME}" ]]; then
        local line
        line="$(printf '%-22s %4ss' "${PHASE_NAME}" "$((SECONDS - PHASE_T0))")"
        PHASE_LOG+=("${line}")
        echo "==> ${PHASE_NAME} took $((SECONDS - PHASE_T0))s"
    fi
    PHASE_NAME="${1:-}"
    PHASE_T0=${SECONDS}
    if [[ -n "${PHASE_NAME}" ]]; then
        echo "==> ${PHASE_NAME}"
    fi
}

# Servers this run started (and so stops); ones already running are kept.
STARTED_PG=0
STARTED_RABBIT=0
STARTED_SSHD=0
STARTED_NETCONF=0
STARTED_CLOUD=0
stop_servers() {
    if [[ "${STARTED_CLOUD}" == 1 && -z "${SERVICEVM_KEEP_SERVERS:-}" ]]; then
        STARTED_CLOUD=0
        bash tools/minicloud.sh stop || echo "WARNING: tools/minicloud.sh stop failed" >&2
    fi
    if [[ -n "${SERVICEVM_KEEP_SERVERS:-}" ]]; then
        if ((STARTED_PG + STARTED_RABBIT + STARTED_SSHD + STARTED_NETCONF > 0)); then
            echo "SERVICEVM_KEEP_SERVERS set: leaving PostgreSQL, RabbitMQ, sshd and netconfd running"
        fi
        STARTED_PG=0
        STARTED_RABBIT=0
        STARTED_SSHD=0
        STARTED_NETCONF=0
        return 0
    fi
    if [[ "${STARTED_NETCONF}" == 1 ]]; then
        STARTED_NETCONF=0
        bash tools/netconfd.sh stop || echo "WARNING: tools/netconfd.sh stop failed" >&2
    fi
    if [[ "${STARTED_SSHD}" == 1 ]]; then
        STARTED_SSHD=0
        bash tools/sshd.sh stop || echo "WARNING: tools/sshd.sh stop failed" >&2
    fi
    if [[ "${STARTED_RABBIT}" == 1 ]]; then
        STARTED_RABBIT=0
        bash tools/rabbitmq.sh stop || echo "WARNING: tools/rabbitmq.sh stop failed" >&2
    fi
    if [[ "${STARTED_PG}" == 1 ]]; then
        STARTED_PG=0
        bash tools/postgres.sh stop || echo "WARNING: tools/postgres.sh stop failed" >&2
    fi
}

# shellcheck disable=SC2317 # invoked via trap
on_exit() {
    local rc=$?
    trap - EXIT
    stop_servers
    exit "${rc}"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fatal() {
    echo "run-tests.sh: ERROR: $*" >&2
    stop_servers
    echo "0 passed, 1 failed"
    exit 1
}

# ---------------------------------------------------------------- install
phase "install"
bash tools/install.sh --test || fatal "tools/install.sh --test failed"
[[ -x "${VENV}/bin/stestr" ]] || fatal "${VENV}/bin/stestr missing (is stestr in test-requirements.txt?)"

# ---------------------------------------------------------------- servers
port_free() {
    # Any TCP socket on the port counts, not only listeners: a client socket
    # (even in TIME-WAIT) on it makes the server's bind() fail.
    ! ss -Htan "sport = :$1" 2>/dev/null | grep -q .
}

# Use the default port unless something else (e.g. servers left running by
# another checkout) holds it; a port set in the environment is always kept.
# All ports stay below Linux's ephemeral range (32768-60999), where busy
# loopback clients can hold them; fallbacks are the default plus 1000 plus
# a random multiple of 10, so concurrent runs rarely collide.
declare -A PORT_DEFAULT=(
    [SERVICEVM_PG_PORT]=25432
    [SERVICEVM_RABBIT_PORT]=25672
    [SERVICEVM_RABBIT_DIST_PORT]=25673
    [SERVICEVM_EPMD_PORT]=24369
    [SERVICEVM_SSHD_PORT]=25222
    [SERVICEVM_NETCONF_PORT]=25830
)
AUTO_PORTS=()
pick_port() {
    local var=$1 again=${2:-} port i
    local default=${PORT_DEFAULT[${var}]}
    if [[ -z "${again}" ]]; then
        [[ -z "${!var:-}" ]] || return 0
        if port_free "${default}"; then
            export "${var}=${default}"
            AUTO_PORTS+=("${var}")
            return 0
        fi
    fi
    for ((i = 0; i < 100; i++)); do
        port=$((default + 1000 + 10 * (RANDOM % 300)))
        if port_free "${port}"; then
            echo "port ${default} is busy: using ${var}=${port}"
            export "${var}=${port}"
            AUTO_PORTS+=("${var}")
            return 0
        fi
    done
    fatal "no free port near ${default} for ${var}"
}

# Start a server; if that fails and we chose its ports, retry twice on new
# random ones (a concurrent run or a busy client may have taken a port).
start_server() {
    local script=$1 try var lost
    shift
    for try in 1 2 3; do
        if bash "tools/${script}" start; then
            return 0
        fi
        # Only ports we chose ourselves can be changed.
        lost=0
        for var in "$@"; do
            if [[ " ${AUTO_PORTS[*]} " == *" ${var} "* ]]; then
                lost=1
            fi
        done
        ((lost && try < 3)) || return 1
        echo "run-tests.sh: start failed; retrying with other ports (a port may have been taken meanwhile)" >&2
        for var in "$@"; do
            if [[ " ${AUTO_PORTS[*]} " == *" ${var} "* ]]; then
                pick_port "${var}" again
            fi
        done
    done
    return 1
}

# Use a server that already runs (and leave it running), or start one on
# free ports and record that this run did ($1: that flag's name; $2: what
# it is; $3: its script in tools/; then its port variables).
use_or_start() {
    local flag=$1 what=$2 script=$3 var
    shift 3
    phase "start ${what}"
    if bash "tools/${script}" status >/dev/null 2>&1; then
        echo "${what} is already running: using it and leaving it running"
    else
        for var in "$@"; do
            pick_port "${var}"
        done
        printf -v "${flag}" 1
    fi
    start_server "${script}" "$@" || fatal "could not start ${what}"
}

# ping and fping, for the tests of the liveness monitor (Debian:
# iputils-ping, fping).
if ! command -v ping >/dev/null || ! command -v fping >/dev/null; then
    phase "install ping and fping"
    [[ "$(id -u)" == 0 ]] || fatal "ping or fping is missing and we are not root: apt-get install iputils-ping fping"
    export DEBIAN_FRONTEND=noninteractive
    apt_ping() {
        timeout 1200 apt-get install -y -qq -o DPkg::Lock::Timeout=300 iputils-ping fping >/dev/null
    }
    apt_ping || { timeout 600 apt-get update -qq && apt_ping; } \
        || fatal "apt-get install iputils-ping fping failed"
fi

use_or_start STARTED_PG postgresql postgres.sh SERVICEVM_PG_PORT
use_or_start STARTED_RABBIT rabbitmq rabbitmq.sh SERVICEVM_RABBIT_PORT \
    SERVICEVM_RABBIT_DIST_PORT SERVICEVM_EPMD_PORT
# The sshd of the ssh management driver's tests: started once for all of
# their classes (which run in parallel: a class that started it would stop
# it under the others).
use_or_start STARTED_SSHD sshd sshd.sh SERVICEVM_SSHD_PORT
# The NETCONF server (netconfd behind its own sshd) of the netconf
# driver's tests, likewise.
use_or_start STARTED_NETCONF netconfd netconfd.sh SERVICEVM_NETCONF_PORT

SERVICEVM_TEST_DB_URL="$(bash tools/postgres.sh url)"
SERVICEVM_TEST_TRANSPORT_URL="$(bash tools/rabbitmq.sh url)"
export SERVICEVM_TEST_DB_URL SERVICEVM_TEST_TRANSPORT_URL
# oslo.db's opportunistic test fixtures (test_fixtures.OpportunisticDBTestMixin)
# find their admin connections here; the servicevm role may create databases.
export OS_TEST_DBAPI_ADMIN_CONNECTION="${OS_TEST_DBAPI_ADMIN_CONNECTION:-sqlite://;${SERVICEVM_TEST_DB_URL}}"
echo "SERVICEVM_TEST_DB_URL=${SERVICEVM_TEST_DB_URL}"
echo "SERVICEVM_TEST_TRANSPORT_URL=${SERVICEVM_TEST_TRANSPORT_URL}"

# ---------------------------------------------------------------- tests
# Prints "passed failed skipped" for a subunit v2 stream on stdin.
count_subunit() {
    "${VENV}/bin/python" -c '
import sys
import subunit
import testtools

counts = {"passed": 0, "failed": 0, "skipped": 0}
PASSED = {"success", "xfail"}
SKIPPED = {"skip"}

def on_test(test):
    status = test["status"]
    if status in PASSED:
        counts["passed"] += 1
    elif status in SKIPPED:
        counts["skipped"] += 1
    else:  # fail, uxsuccess, and tests that never finished (worker crash)
        counts["failed"] += 1

stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer,
                                          non_subunit_name="stdout")
result = testtools.StreamToDict(on_test)
result.startTestRun()
try:
    stream.run(result)
finally:
    result.stopTestRun()
print(counts["passed"], counts["failed"], counts["skipped"])
'
}

has_test_files() {
    [[ -d "$1" ]] && [[ -n "$(find "$1" -name 'test*.py' -print -quit)" ]]
}

declare -A S_PASSED S_FAILED S_SKIPPED S_NOTE S_TIME S_FAILING
TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0

run_suite() {
    local suite=$1
    local path="./servicevm/tests/${suite}"
    local repo="${STATE_DIR}/stestr/${suite}"
    local listing rc=0 counts
    local p=0 f=0 s=0 note=""
    local t0=${SECONDS}
    # A functional test class starts its own servers: keep its tests on
    # one worker.
    local -a GROUPING=()
    [[ "${suite}" == unit ]] || GROUPING=(--parallel-class)

    if ! has_test_files "${path}"; then
        note="no tests yet (${path})"
    else
        # A fresh repository per run: `last` then can only be this run.
        # (stestr -u DIR keeps it in DIR/.stestr.)
        rm -rf "${repo}"
        mkdir -p "${repo}"
        # Discovery first: an import error is a failure, a filter that
        # matches nothing in this suite is not.
        if ! "${VENV}/bin/stestr" -u "${repo}" init >/dev/null; then
            f=1
            note="stestr init ${repo} failed"
        elif ! listing="$(timeout 600 "${VENV}/bin/stestr" --test-path "${path}" -u "${repo}" \
                list "${FILTERS[@]}" 2>&1)"; then
            printf '%s\n' "${listing}" | tail -n 60
            f=1
            note="test discovery failed (import error?)"
        elif ! grep -q '[^[:space:]]' <<<"${listing}"; then
            note="no tests matched"
        else
            timeout --kill-after=30 "${SUITE_TIMEOUT}" \
                "${VENV}/bin/stestr" --test-path "${path}" -u "${repo}" \
                "${GROUPING[@]}" run "${FILTERS[@]}" || rc=$?
            if [[ "${rc}" == 124 || "${rc}" == 137 ]]; then
                echo "run-tests.sh: ${suite} suite killed after ${SUITE_TIMEOUT}s" >&2
                note="timed out after ${SUITE_TIMEOUT}s"
            fi
            if counts="$("${VENV}/bin/stestr" -u "${repo}" last --subunit 2>/dev/null | count_subunit)" \
                    && [[ "${counts}" =~ ^[0-9]+\ [0-9]+\ [0-9]+$ ]]; then
                read -r p f s <<<"${counts}"
            else
                note="${note:-no results recorded}"
            fi
            if [[ "${rc}" != 0 && "${f}" == 0 ]]; then
                # stestr failed without a failing test: count it as one.
                f=1
                note="${note:+${note}; }stestr exited ${rc} without a failing test"
            fi
        fi
    fi
    if [[ "${f}" != 0 && -d "${repo}/.stestr" ]]; then
        S_FAILING[${suite}]="$("${VENV}/bin/stestr" -u "${repo}" failing --list 2>/dev/null | sed 's/\[.*\]$//' || true)"
        # Only each failure's id and traceback (not its captured logs).
        "${VENV}/bin/stestr" -u "${repo}" failing 2>/dev/null | awk '
            /\{\{\{$/ { skip = 1 }
            skip { if ($0 ~ /^\}\}\}$/) skip = 0; next }
            /^(FAIL|ERROR):/ { keep = 1 }
            /^Captured traceback:/ { keep = 1 }
            /^Captured [a-z]+:/ && !/traceback/ { keep = 0 }
            /^Ran [0-9]+ tests/ { keep = 0 }
            keep' | tail -n 120 > "${STATE_DIR}/failing-${suite}.txt" || true
    fi
    S_PASSED[${suite}]=${p}
    S_FAILED[${suite}]=${f}
    S_SKIPPED[${suite}]=${s}
    S_NOTE[${suite}]=${note}
    S_TIME[${suite}]=$((SECONDS - t0))
    TOTAL_PASSED=$((TOTAL_PASSED + p))
    TOTAL_FAILED=$((TOTAL_FAILED + f))
    TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
}

# The local OpenStack cloud of the integration suite (tools/minicloud.sh):
# started after the functional suite (whose timings it would disturb), and
# stopped on exit unless it was already running. SERVICEVM_SKIP_CLOUD=1
# skips it and the integration suite.
start_cloud() {
    if bash tools/minicloud.sh status >/dev/null 2>&1; then
        echo "the local cloud is already running: using it and leaving it running"
    else
        STARTED_CLOUD=1
        if ! bash tools/minicloud.sh start; then
            echo "run-tests.sh: tools/minicloud.sh start failed" >&2
            return 1
        fi
    fi
    SERVICEVM_MINICLOUD_ENV="${STATE_DIR}/minicloud/env.json"
    export SERVICEVM_MINICLOUD_ENV
    echo "SERVICEVM_MINICLOUD_ENV=${SERVICEVM_MINICLOUD_ENV}"
}

for suite in "${SUITES[@]}"; do
    if [[ "${suite}" == integration && -n "${SERVICEVM_SKIP_CLOUD:-}" ]]; then
        S_PASSED[${suite}]=0
        S_FAILED[${suite}]=0
        S_SKIPPED[${suite}]=0
        S_NOTE[${suite}]="not run: SERVICEVM_SKIP_CLOUD is set"
        S_TIME[${suite}]=0
        continue
    fi
    if [[ "${suite}" == integration ]]; then
        phase "start the local cloud"
        if ! start_cloud; then
            S_PASSED[${suite}]=0
            S_FAILED[${suite}]=1
            S_SKIPPED[${suite}]=0
            S_NOTE[${suite}]="the local cloud did not start"
            S_TIME[${suite}]=0
            TOTAL_FAILED=$((TOTAL_FAILED + 1))
            continue
        fi
    fi
    phase "${suite} tests"
    run_suite "${suite}"
done

# ---------------------------------------------------------------- teardown
phase "stop servers"
stop_servers
phase ""

# ---------------------------------------------------------------- summary
# The end of each failing suite's tracebacks, so that a log's tail shows
# why it failed.
for suite in "${SUITES[@]}"; do
    if [[ -n "${S_FAILING[${suite}]:-}" && -s "${STATE_DIR}/failing-${suite}.txt" ]]; then
        echo
        echo "==================== ${suite}: failing tests (end of output) ===================="
        cat "${STATE_DIR}/failing-${suite}.txt"
    fi
done
echo
echo "==================== servicevm test summary ===================="
for line in "${PHASE_LOG[@]}"; do
    echo "phase  ${line}"
done
echo "total                  $((SECONDS - T_START))s"
for suite in "${SUITES[@]}"; do
    printf 'suite  %-12s passed=%-5s failed=%-5s skipped=%-5s %4ss %s\n' \
        "${suite}" "${S_PASSED[${suite}]}" "${S_FAILED[${suite}]}" \
        "${S_SKIPPED[${suite}]}" "${S_TIME[${suite}]}" "${S_NOTE[${suite}]}"
    while read -r test_id; do
        [[ -n "${test_id}" ]] && echo "  FAILED ${test_id}"
    done <<<"${S_FAILING[${suite}]:-}"
done
RC=0
if ((TOTAL_FAILED > 0)); then
    echo "RESULT: FAILED"
    RC=1
elif ((TOTAL_PASSED + TOTAL_FAILED == 0)); then
    echo "RESULT: FAILED (no test ran)"
    RC=1
else
    echo "RESULT: OK"
fi
SUMMARY="${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed"
if ((TOTAL_SKIPPED > 0)); then
    SUMMARY+=", ${TOTAL_SKIPPED} skipped"
fi
echo "${SUMMARY}"
exit "${RC}"
