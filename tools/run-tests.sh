#!/usr/bin/env bash
# Run the whole servicevm test suite (what the README and CI run).
#
#   tools/run-tests.sh [FILTER...]
#
# 1. tools/install.sh --test
# 2. start the private PostgreSQL and RabbitMQ servers (stopped again on exit,
#    unless SERVICEVM_KEEP_SERVERS=1) and export SERVICEVM_TEST_DB_URL and
#    SERVICEVM_TEST_TRANSPORT_URL
# 3. stestr over servicevm/tests/unit, then servicevm/tests/functional (both
#    always run; FILTERs are passed to both as stestr test filters)
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
SUITES=(unit functional)
FILTERS=("$@")

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

SERVERS_UP=0
stop_servers() {
    [[ "${SERVERS_UP}" == 1 ]] || return 0
    SERVERS_UP=0
    if [[ -n "${SERVICEVM_KEEP_SERVERS:-}" ]]; then
        echo "SERVICEVM_KEEP_SERVERS set: leaving PostgreSQL and RabbitMQ running"
        return 0
    fi
    bash tools/rabbitmq.sh stop || echo "WARNING: tools/rabbitmq.sh stop failed" >&2
    bash tools/postgres.sh stop || echo "WARNING: tools/postgres.sh stop failed" >&2
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
phase "start postgresql"
SERVERS_UP=1
bash tools/postgres.sh start || fatal "could not start PostgreSQL"
phase "start rabbitmq"
bash tools/rabbitmq.sh start || fatal "could not start RabbitMQ"

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

declare -A S_PASSED S_FAILED S_SKIPPED S_NOTE S_TIME
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
        elif ! listing="$("${VENV}/bin/stestr" --test-path "${path}" -u "${repo}" \
                list "${FILTERS[@]}" 2>&1)"; then
            printf '%s\n' "${listing}" | tail -n 60
            f=1
            note="test discovery failed (import error?)"
        elif ! grep -q '[^[:space:]]' <<<"${listing}"; then
            note="no tests matched"
        else
            "${VENV}/bin/stestr" --test-path "${path}" -u "${repo}" run "${FILTERS[@]}" || rc=$?
            if counts="$("${VENV}/bin/stestr" -u "${repo}" last --subunit 2>/dev/null | count_subunit)" \
                    && [[ "${counts}" =~ ^[0-9]+\ [0-9]+\ [0-9]+$ ]]; then
                read -r p f s <<<"${counts}"
            else
                note="no results recorded"
            fi
            if [[ "${rc}" != 0 && "${f}" == 0 ]]; then
                # stestr failed without a failing test: count it as one.
                f=1
                note="${note:+${note}; }stestr exited ${rc} without a failing test"
            fi
        fi
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

for suite in "${SUITES[@]}"; do
    phase "${suite} tests"
    run_suite "${suite}"
done

# ---------------------------------------------------------------- teardown
phase "stop servers"
stop_servers
phase ""

# ---------------------------------------------------------------- summary
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
