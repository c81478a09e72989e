#!/usr/bin/env bash
# Fuzz the API with schemathesis, driven by its own OpenAPI document
# (/v1/openapi.json), against a private all-in-one server (SQLite, noauth,
# noop drivers) on a free loopback port.
#
#   tools/fuzz.sh [--max-examples N] [--min-requests N] [--phases P]
#                 [--seed S] [--workers W]
#
# Checks: no 5xx (not_a_server_error), every response's status, content
# type and body as the document says (status_code_conformance,
# content_type_conformance, response_schema_conformance). Fails when
# schemathesis reports a failure or an error, or when fewer than
# --min-requests requests were generated. schemathesis comes from
# tools/fuzz-requirements.txt (pinned), in a venv of its own.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SERVICEVM_TEST_STATE:-${REPO_ROOT}/.ci/work}"
FUZZ_VENV="${STATE_DIR}/fuzz-venv"
PYTHON="${PYTHON:-python3}"
MAX_EXAMPLES=120
MIN_REQUESTS=2000
PHASES=fuzzing
SEED=1
WORKERS=2

while (($#)); do
    case "$1" in
        --max-examples) MAX_EXAMPLES=$2; shift 2 ;;
        --min-requests) MIN_REQUESTS=$2; shift 2 ;;
        --phases) PHASES=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        *) echo "usage: $0 [--max-examples N] [--min-requests N] [--phases P] [--seed S] [--workers W]" >&2; exit 2 ;;
    esac
done

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }

# The fuzzer's venv, rebuilt when the pins change.
PINS="${REPO_ROOT}/tools/fuzz-requirements.txt"
STAMP="${FUZZ_VENV}/.pins-$(sha256sum "${PINS}" | cut -c1-16)"
if [[ ! -e "${STAMP}" ]]; then
    log "installing schemathesis into ${FUZZ_VENV}"
    rm -rf "${FUZZ_VENV}"
    "${PYTHON}" -m venv "${FUZZ_VENV}"
    "${FUZZ_VENV}/bin/pip" install -q --disable-pip-version-check -r "${PINS}"
    touch "${STAMP}"
fi

SERVER_BIN="${SERVICEVM_BIN:-${REPO_ROOT}/.venv/bin}/servicevm-all-in-one"
[[ -x "${SERVER_BIN}" ]] || { log "ERROR: ${SERVER_BIN} is missing: install servicevm first"; exit 1; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/servicevm-fuzz.XXXXXX")"
PORT="$("${PYTHON}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf '[api]\nhost = 127.0.0.1\nport = %s\n' "${PORT}" >"${WORK}/servicevm.conf"
SERVER_PID=
cleanup() {
    if [[ -n "${SERVER_PID}" ]]; then
        kill -TERM "${SERVER_PID}" 2>/dev/null || true
        wait "${SERVER_PID}" 2>/dev/null || true
    fi
    rm -rf "${WORK}"
}
trap cleanup EXIT

XDG_DATA_HOME="${WORK}/data" "${SERVER_BIN}" --config-file "${WORK}/servicevm.conf" \
    >"${WORK}/server.log" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:${PORT}"
for _ in $(seq 300); do
    "${PYTHON}" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "${URL}/v1/openapi.json" >/dev/null 2>&1 && break
    kill -0 "${SERVER_PID}" 2>/dev/null || { tail -n 30 "${WORK}/server.log" >&2; log "ERROR: the server exited"; exit 1; }
    sleep 0.1
done

log "fuzzing ${URL} (phases ${PHASES}, max examples ${MAX_EXAMPLES}, seed ${SEED})"
rc=0
# (From the work dir: schemathesis keeps a cache where it runs.)
cd "${WORK}"
"${FUZZ_VENV}/bin/st" run "${URL}/v1/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases "${PHASES}" --max-examples "${MAX_EXAMPLES}" --seed "${SEED}" \
    --workers "${WORKERS}" --no-color >"${WORK}/st.out" 2>&1 || rc=$?
sed -n '/SUMMARY/,$p' "${WORK}/st.out"
if ((rc != 0)); then
    cat "${WORK}/st.out" >&2
    if grep -q 'Traceback' "${WORK}/server.log"; then
        log "server tracebacks:"
        grep -A30 'Traceback' "${WORK}/server.log" | head -n 120 >&2
    fi
    log "FAILED: schemathesis exited ${rc}"
    exit 1
fi
generated="$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "${WORK}/st.out" | tail -n 1)"
if [[ -z "${generated}" || "${generated}" -lt "${MIN_REQUESTS}" ]]; then
    log "FAILED: ${generated:-no} requests generated, fewer than ${MIN_REQUESTS}"
    exit 1
fi
if grep -q ' ERROR ' "${WORK}/server.log"; then
    grep ' ERROR ' "${WORK}/server.log" | head -n 20 >&2
    log "FAILED: the server logged errors"
    exit 1
fi
log "OK: ${generated} requests, no 5xx, every response as documented"
