#!/usr/bin/env bash
# A longer fuzz of the API than the test suite's (tools/fuzz.sh): more
# examples per operation and a seed of its own each run (printed, to
# replay one). Extra arguments go to tools/fuzz.sh.
#
#   bench/fuzz.sh [--max-examples 1000] [--seed S] ...
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec bash "${REPO_ROOT}/tools/fuzz.sh" --max-examples 1000 --min-requests 20000 \
    --seed "${RANDOM}${RANDOM}" "$@"
