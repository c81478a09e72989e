#!/usr/bin/env bash
# Create/refresh the project virtualenv in <repo>/.venv.
#
#   tools/install.sh [--test]
#
# Installs requirements.txt (plus test-requirements.txt with --test) and the
# project itself in editable mode, all pinned by constraints.txt. Nothing
# unpinned is upgraded (not even pip). A stamp in .venv records a hash of the
# requirement files, constraints.txt and setup.cfg: when it is current the
# install is skipped, so re-running is fast.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
PYTHON="${PYTHON:-python3}"
LOCK_TIMEOUT="${SERVICEVM_INSTALL_LOCK_TIMEOUT:-1800}"
PIP_TIMEOUT="${SERVICEVM_PIP_TIMEOUT:-1800}"

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

usage() {
    echo "usage: $0 [--test]" >&2
    exit 2
}

WITH_TEST=0
for arg in "$@"; do
    case "${arg}" in
        --test) WITH_TEST=1 ;;
        -h | --help) usage ;;
        *) log "unknown argument: ${arg}"; usage ;;
    esac
done

cd "${REPO_ROOT}"
T0=${SECONDS}

for f in requirements.txt constraints.txt setup.cfg; do
    [[ -f "${f}" ]] || die "${REPO_ROOT}/${f} is missing"
done
if [[ "${WITH_TEST}" == 1 && ! -f test-requirements.txt ]]; then
    die "${REPO_ROOT}/test-requirements.txt is missing"
fi

VENV_ERR="$(mktemp)"
trap 'rm -f "${VENV_ERR}"' EXIT
make_venv() {
    "${PYTHON}" -m venv "${VENV}" >/dev/null 2>"${VENV_ERR}"
}

if [[ ! -x "${VENV}/bin/python" || ! -x "${VENV}/bin/pip" ]]; then
    command -v "${PYTHON}" >/dev/null || die "${PYTHON} not found"
    log "creating ${VENV} with $("${PYTHON}" -V 2>&1)"
    if ! make_venv; then
        # Debian's python3 ships venv/ensurepip separately.
        [[ "$(id -u)" == 0 ]] || die "python3 -m venv failed ($(tail -n 1 "${VENV_ERR}")); install python3-venv"
        log "python3 -m venv failed ($(tail -n 1 "${VENV_ERR}")); installing python3-venv"
        export DEBIAN_FRONTEND=noninteractive
        timeout 600 apt-get update -qq || die "apt-get update failed"
        timeout 1200 apt-get install -y -qq -o DPkg::Lock::Timeout=300 python3-venv >/dev/null || die "apt-get install python3-venv failed"
        make_venv || die "python3 -m venv still fails: $(cat "${VENV_ERR}")"
    fi
fi

# Serialise concurrent runs of this script against the same venv.
exec 9>"${VENV}/.servicevm-install.lock"
flock -w "${LOCK_TIMEOUT}" 9 || die "another tools/install.sh holds ${VENV}/.servicevm-install.lock for over ${LOCK_TIMEOUT}s"

stamp_hash() {
    {
        "${VENV}/bin/python" -VV
        local f
        for f in ./*requirements*.txt constraints.txt setup.cfg setup.py; do
            if [[ -f "${f}" ]]; then
                sha256sum "${f}"
            fi
        done
    } | sha256sum | cut -d' ' -f1
}

HASH="$(stamp_hash)"
STAMP_BASE="${VENV}/.servicevm-stamp"
STAMP_TEST="${VENV}/.servicevm-stamp-test"

stamp_current() {
    local s
    for s in "$@"; do
        if [[ -f "${s}" && "$(cat "${s}")" == "${HASH}" ]]; then
            # The project itself must still be installed in the venv.
            "${VENV}/bin/python" -c 'import importlib.metadata as m; m.distribution("servicevm")' \
                >/dev/null 2>&1 && return 0
        fi
    done
    return 1
}

if [[ "${WITH_TEST}" == 1 ]]; then
    wanted=("${STAMP_TEST}")
else
    # A test install is a superset of the plain one.
    wanted=("${STAMP_BASE}" "${STAMP_TEST}")
fi
if stamp_current "${wanted[@]}"; then
    log "${VENV} is up to date (stamp ${HASH:0:12}); done in $((SECONDS - T0))s"
    exit 0
fi

args=(install -c constraints.txt -r requirements.txt)
if [[ "${WITH_TEST}" == 1 ]]; then
    args+=(-r test-requirements.txt)
fi
args+=(-e .)
if [[ -z "${SERVICEVM_PIP_VERBOSE:-}" ]]; then
    args+=(-q)
fi

# pbr derives the version from git; without any commit (fresh repo, plain
# copy of the tree) it cannot, so give it a placeholder version.
if [[ -z "${PBR_VERSION:-}" && ! -f PKG-INFO ]] \
        && ! git -C "${REPO_ROOT}" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    log "no git commit to version from: using PBR_VERSION=0.0.0"
    export PBR_VERSION=0.0.0
fi

rm -f "${STAMP_BASE}" "${STAMP_TEST}"
log "pip ${args[*]}"
# The machine's pip config may name local index dirs that lack a package;
# pip then warns once per package. Drop just that noise.
NOISE="^WARNING: Location 'file://[^']*' is ignored: it is neither a file nor a directory\\.\$"
if ! timeout "${PIP_TIMEOUT}" "${VENV}/bin/pip" "${args[@]}" \
        2> >(grep -v -e "${NOISE}" >&2 || true); then
    die "pip install failed (or timed out after ${PIP_TIMEOUT}s); see the pip output above"
fi
if [[ "${WITH_TEST}" == 1 ]]; then
    printf '%s\n' "${HASH}" >"${STAMP_TEST}"
fi
printf '%s\n' "${HASH}" >"${STAMP_BASE}"
log "installed into ${VENV}; done in $((SECONDS - T0))s"
