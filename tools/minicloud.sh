#!/usr/bin/env bash
# A small but real OpenStack control plane on 127.0.0.1 for integration tests.
#
#   tools/minicloud.sh start    install (first time) and start everything
#   tools/minicloud.sh stop     stop every service and the private servers
#   tools/minicloud.sh status   what runs, where, and its memory
#   tools/minicloud.sh env      shell `export` lines (credentials, ids)
#   tools/minicloud.sh smoke    boot/delete a server, a Heat stack, a failed boot
#
# Keystone, Placement, Glance (file store), Neutron (ML2, no agents, a test
# mechanism driver that binds every port), Nova with the fake virt driver
# (api, conductor, scheduler, compute) and Heat (api, engine), from PyPI
# (OpenStack 2026.1) in their own venv, on a private PostgreSQL and a private
# RabbitMQ (tools/postgres.sh and tools/rabbitmq.sh with other ports and
# their own state dir, so they never meet servicevm's test servers).
# Everything lives under ${SERVICEVM_TEST_STATE:-<repo>/.ci/work}/minicloud:
# venv/, etc/, log/, run/ (pid files), data/, pg/, rabbit/, env.json, env.sh.
# See tools/minicloud/README.md for ports, timings and memory.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${REPO_ROOT}/tools/minicloud"
STATE_DIR="${SERVICEVM_TEST_STATE:-${REPO_ROOT}/.ci/work}"
MC_DIR="${STATE_DIR}/minicloud"
VENV="${MC_DIR}/venv"
ETC="${MC_DIR}/etc"
LOG_DIR="${MC_DIR}/log"
RUN_DIR="${MC_DIR}/run"
# The working directory of every service process, by which stop finds them.
PROC_CWD="${RUN_DIR}/cwd"
DATA_DIR="${MC_DIR}/data"
ENV_JSON="${MC_DIR}/env.json"
ENV_SH="${MC_DIR}/env.sh"
CONSTRAINTS="${MINICLOUD_CONSTRAINTS:-${REPO_ROOT}/../shared/data/upper-constraints-2026.1.txt}"
PYTHON="${MINICLOUD_PYTHON:-python3}"

# OpenStack 2026.1 releases that install together with its constraints.
PACKAGES=(
    keystone==29.1.0
    openstack-placement==15.0.0
    glance==32.0.0
    nova==33.0.2
    openstack-heat==26.0.2
    neutron==28.0.2
    gunicorn
    psycopg2-binary
    keystoneauth1
    python-novaclient
    python-heatclient
)

# Ports: all on 127.0.0.1, away from the usual ones, from servicevm's test
# servers (PostgreSQL 25432, RabbitMQ 25672/25673, epmd 24369) and below
# Linux's ephemeral range (32768-60999): a listener there can fail with
# EADDRINUSE when some outgoing connection happens to hold the port.
KEYSTONE_PORT="${MINICLOUD_KEYSTONE_PORT:-15000}"
NOVA_PORT="${MINICLOUD_NOVA_PORT:-18774}"
PLACEMENT_PORT="${MINICLOUD_PLACEMENT_PORT:-18778}"
GLANCE_PORT="${MINICLOUD_GLANCE_PORT:-19292}"
HEAT_PORT="${MINICLOUD_HEAT_PORT:-18004}"
NEUTRON_PORT="${MINICLOUD_NEUTRON_PORT:-19696}"
PG_PORT="${MINICLOUD_PG_PORT:-15432}"
RABBIT_PORT="${MINICLOUD_RABBIT_PORT:-16672}"
RABBIT_DIST_PORT="${MINICLOUD_RABBIT_DIST_PORT:-16673}"
EPMD_PORT="${MINICLOUD_EPMD_PORT:-14369}"
RABBIT_NODENAME="minicloud@localhost"

# Test-only credentials.
ADMIN_PASSWORD=minicloud-admin
SERVICE_PASSWORD=minicloud-service
SERVICEVM_PASSWORD=servicevm-minicloud
DEMO_PASSWORD=minicloud-demo
# postgres.sh and rabbitmq.sh create these.
DB_CREDS=servicevm:servicevm
RABBIT_CREDS=servicevm:servicevm
COMPUTE_HOST=minicloud-compute

INSTALL_TIMEOUT="${MINICLOUD_INSTALL_TIMEOUT:-1800}"
DBSYNC_TIMEOUT="${MINICLOUD_DBSYNC_TIMEOUT:-900}"
API_TIMEOUT="${MINICLOUD_API_TIMEOUT:-180}"
BOOTSTRAP_TIMEOUT="${MINICLOUD_BOOTSTRAP_TIMEOUT:-600}"
SMOKE_TIMEOUT="${MINICLOUD_SMOKE_TIMEOUT:-900}"
LOCK_TIMEOUT="${MINICLOUD_LOCK_TIMEOUT:-1800}"
# An oslo service gets SIGTERM, then SIGKILL after this many seconds.
KILL_AFTER=10

# Start order. APIs run under gunicorn, the rest are oslo services.
APIS=(keystone placement glance neutron nova-api heat-api)
DAEMONS=(nova-conductor nova-scheduler heat-engine nova-compute)
SERVICES=("${APIS[@]}" "${DAEMONS[@]}")

declare -A API_PORT=(
    [keystone]="${KEYSTONE_PORT}" [placement]="${PLACEMENT_PORT}"
    [glance]="${GLANCE_PORT}" [neutron]="${NEUTRON_PORT}"
    [nova-api]="${NOVA_PORT}" [heat-api]="${HEAT_PORT}"
)
# gunicorn app: a factory in tools/minicloud/minicloud_wsgi.py.
declare -A API_APP=(
    [keystone]="keystone()" [placement]="placement()" [glance]="glance()"
    [neutron]="neutron()" [nova-api]="nova()" [heat-api]="heat()"
)
declare -A API_WORKERS=(
    [keystone]=2 [placement]=1 [glance]=1 [neutron]=1 [nova-api]=2 [heat-api]=1
)
# Threads per worker. A server create keeps a nova-api thread for a second
# or more (it waits on Neutron, Glance and Placement): with 4 threads a
# burst of creates queued every other request, lists included, for tens of
# seconds. Neutron serves each create's port calls, hence its 8.
declare -A API_THREADS=(
    [keystone]=4 [placement]=4 [glance]=4 [neutron]=8 [nova-api]=8 [heat-api]=4
)
# A path that answers once the application has loaded.
declare -A API_PROBE=(
    [keystone]=/v3 [placement]=/ [glance]=/versions [neutron]=/
    [nova-api]=/ [heat-api]=/
)

log() { printf 'minicloud.sh: %s\n' "$*" >&2; }

log_tails() {
    # The end of each service log, newest problems last.
    local name f
    for name in "$@"; do
        f="${LOG_DIR}/${name}.log"
        if [[ -s "${f}" ]]; then
            printf -- '---- last 30 lines of %s ----\n' "${f}" >&2
            tail -n 30 "${f}" >&2 || true
        fi
    done
    printf -- '---- end of logs ----\n' >&2
}

die() {
    # die MESSAGE [SERVICE...]: the services whose logs to show (default all).
    local msg="$1"
    shift
    log "ERROR: ${msg}"
    if [[ "${1:-}" == none ]]; then
        exit 1
    elif [[ $# -gt 0 ]]; then
        log_tails "$@"
    else
        log_tails "${SERVICES[@]}"
    fi
    exit 1
}

usage() {
    echo "usage: $0 start|stop|status|env|smoke" >&2
    exit 2
}

db_url() { printf 'postgresql+psycopg2://%s@127.0.0.1:%s/%s' "${DB_CREDS}" "${PG_PORT}" "$1"; }
transport_url() { printf 'rabbit://%s@127.0.0.1:%s/' "${RABBIT_CREDS}" "${RABBIT_PORT}"; }
auth_url() { printf 'http://127.0.0.1:%s/v3' "${KEYSTONE_PORT}"; }

# -- private PostgreSQL and RabbitMQ -----------------------------------------

backend() {
    # backend postgres|rabbitmq ARGS: the repo's scripts, on the cloud's own
    # ports and state dir.
    local script="$1"
    shift
    SERVICEVM_TEST_STATE="${MC_DIR}" \
        SERVICEVM_PG_PORT="${PG_PORT}" \
        SERVICEVM_RABBIT_PORT="${RABBIT_PORT}" \
        SERVICEVM_RABBIT_DIST_PORT="${RABBIT_DIST_PORT}" \
        SERVICEVM_EPMD_PORT="${EPMD_PORT}" \
        SERVICEVM_RABBIT_NODENAME="${RABBIT_NODENAME}" \
        bash "${REPO_ROOT}/tools/${script}.sh" "$@" 9>&-
}

psql_cloud() {
    PGPASSWORD="${DB_CREDS#*:}" PGCONNECT_TIMEOUT=10 PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "${PG_PORT}" -U "${DB_CREDS%%:*}" -d servicevm "$@"
}

DATABASES=(keystone placement glance nova_api nova nova_cell0 neutron heat)
NEW_DATABASES=()

ensure_databases() {
    # The databases live as long as data/ (Keystone keys, Nova's node
    # identity...): when data/ is new, leftover databases (e.g. a PostgreSQL
    # that postgres.sh kept in /tmp) are dropped first.
    local db exists marker="${DATA_DIR}/databases.created"
    NEW_DATABASES=()
    if [[ ! -f "${marker}" ]]; then
        for db in "${DATABASES[@]}"; do
            psql_cloud -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" \
                || die "cannot drop database ${db}" none
        done
    fi
    for db in "${DATABASES[@]}"; do
        exists="$(psql_cloud -tA -c "SELECT 1 FROM pg_database WHERE datname = '${db}'")" \
            || die "cannot query PostgreSQL on port ${PG_PORT}"
        if [[ "${exists}" != 1 ]]; then
            psql_cloud -c "CREATE DATABASE ${db}" || die "cannot create database ${db}"
            NEW_DATABASES+=("${db}")
        fi
    done
    touch "${marker}"
}

# -- the venv -------------------------------------------------------------------

venv_stamp() {
    {
        "${VENV}/bin/python" -VV
        printf '%s\n' "${PACKAGES[@]}"
        sha256sum "${CONSTRAINTS}" | cut -d' ' -f1
        cat "${TOOLS_DIR}/ml2_bindall/pyproject.toml" "${TOOLS_DIR}/ml2_bindall/minicloud_ml2_bindall.py"
    } | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    [[ -f "${CONSTRAINTS}" ]] || die "constraints file not found: ${CONSTRAINTS}"
    if [[ ! -x "${VENV}/bin/python" ]]; then
        command -v "${PYTHON}" >/dev/null || die "${PYTHON} not found (set MINICLOUD_PYTHON)"
        log "creating ${VENV} with $("${PYTHON}" -V 2>&1)"
        "${PYTHON}" -m venv "${VENV}" \
            || die "${PYTHON} -m venv failed (Debian: apt-get install python3-venv)"
    fi
    local stamp_file="${VENV}/.minicloud-stamp" want
    want="$(venv_stamp)"
    if [[ "$(cat "${stamp_file}" 2>/dev/null || true)" != "${want}" ]]; then
        local t0=${SECONDS} pip_log="${LOG_DIR}/pip-install.log"
        log "installing OpenStack 2026.1 into ${VENV} (a few minutes; log ${pip_log})"
        rm -f "${stamp_file}"
        if ! timeout "${INSTALL_TIMEOUT}" "${VENV}/bin/pip" install -q \
                -c "${CONSTRAINTS}" "${PACKAGES[@]}" >"${pip_log}" 2>&1; then
            grep -v 'is ignored: it is neither' "${pip_log}" | tail -n 30 >&2 || true
            die "pip install failed (log ${pip_log})" none
        fi
        # The test mechanism driver: a distribution, for its entry point.
        if ! timeout 600 "${VENV}/bin/pip" install -q --no-deps --force-reinstall \
                "${TOOLS_DIR}/ml2_bindall" >>"${pip_log}" 2>&1; then
            tail -n 30 "${pip_log}" >&2 || true
            die "pip install of tools/minicloud/ml2_bindall failed" none
        fi
        echo "${want}" >"${stamp_file}"
        log "installed in $((SECONDS - t0))s ($(du -sm "${VENV}" | cut -f1) MB)"
    fi
    "${VENV}/bin/python" "${TOOLS_DIR}/patch_venv.py" apply >/dev/null \
        || die "patching the cloud venv failed (see above)" none
    "${VENV}/bin/python" "${TOOLS_DIR}/patch_venv.py" check >/dev/null \
        || die "the cloud venv is not patched (see above)" none
}

# -- configuration --------------------------------------------------------------

authtoken_section() {
    # [keystone_authtoken] for service user $1.
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:${KEYSTONE_PORT}
auth_url = http://127.0.0.1:${KEYSTONE_PORT}
auth_type = password
user_domain_name = Default
project_domain_name = Default
project_name = service
username = $1
password = ${SERVICE_PASSWORD}
service_token_roles_required = true
EOF
}

service_auth() {
    # Keystone credentials of service user $1 for a [section] of client options.
    cat <<EOF
auth_url = http://127.0.0.1:${KEYSTONE_PORT}
auth_type = password
user_domain_name = Default
project_domain_name = Default
project_name = service
username = $1
password = ${SERVICE_PASSWORD}
region_name = RegionOne
EOF
}

common_default() {
    # [DEFAULT] lines every service shares. No log_file: each process logs
    # to its stderr, which launch() appends to log/<service>.log (one file
    # per process even where several share a config file).
    cat <<EOF
debug = false
use_stderr = true
transport_url = $(transport_url)
graceful_shutdown_timeout = 5
EOF
}

write_configs() {
    mkdir -p "${ETC}"/{keystone,placement,glance,nova,neutron,heat} \
        "${DATA_DIR}"/keystone/{fernet-keys,credential-keys} \
        "${DATA_DIR}"/glance/{images,staging,tasks,cache} \
        "${DATA_DIR}"/nova/{instances,lock} "${DATA_DIR}"/neutron/lock \
        "${DATA_DIR}"/heat/lock
    chmod 0700 "${DATA_DIR}"/keystone/{fernet-keys,credential-keys}

    cat >"${ETC}/keystone/keystone.conf" <<EOF
[DEFAULT]
debug = false
use_stderr = true
[database]
connection = $(db_url keystone)
[token]
provider = fernet
[fernet_tokens]
key_repository = ${DATA_DIR}/keystone/fernet-keys
[fernet_receipts]
key_repository = ${DATA_DIR}/keystone/fernet-keys
[credential]
key_repository = ${DATA_DIR}/keystone/credential-keys
[oslo_messaging_notifications]
driver = noop
EOF

    {
        cat <<EOF
[DEFAULT]
debug = false
use_stderr = true
[api]
auth_strategy = keystone
[placement_database]
connection = $(db_url placement)
EOF
        authtoken_section placement
    } >"${ETC}/placement/placement.conf"

    {
        cat <<EOF
[DEFAULT]
$(common_default)
enabled_backends = fs:file
worker_self_reference_url = http://127.0.0.1:${GLANCE_PORT}
image_cache_dir = ${DATA_DIR}/glance/cache
[database]
connection = $(db_url glance)
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = ${DATA_DIR}/glance/images
[os_glance_staging_store]
filesystem_store_datadir = ${DATA_DIR}/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = ${DATA_DIR}/glance/tasks
[paste_deploy]
flavor = keystone
config_file = ${VENV}/etc/glance/glance-api-paste.ini
[oslo_messaging_notifications]
driver = noop
[oslo_concurrency]
lock_path = ${DATA_DIR}/glance/cache
EOF
        authtoken_section glance
    } >"${ETC}/glance/glance-api.conf"

    cp "${VENV}/etc/nova/api-paste.ini" "${ETC}/nova/api-paste.ini"
    {
        cat <<EOF
[DEFAULT]
$(common_default)
host = ${COMPUTE_HOST}
my_ip = 127.0.0.1
state_path = ${DATA_DIR}/nova
instances_path = ${DATA_DIR}/nova/instances
# FakeDriver's node uuid is random per process ("Duplicate compute node
# record" on a restart); this one keeps it in state_path/compute_id.
compute_driver = fake.FakeDriverWithoutFakeNodes
vif_plugging_is_fatal = false
vif_plugging_timeout = 0
# One compute host: a resize stays on it.
allow_resize_to_same_host = true
[api]
auth_strategy = keystone
[api_database]
connection = $(db_url nova_api)
[database]
connection = $(db_url nova)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[quota]
instances = -1
cores = -1
ram = -1
[oslo_concurrency]
lock_path = ${DATA_DIR}/nova/lock
# Versioned notifications on the cloud's bus (topic
# versioned_notifications), for servicevm's [nova] notifications_url.
[oslo_messaging_notifications]
driver = messagingv2
[notifications]
notification_format = versioned
[glance]
region_name = RegionOne
[cinder]
os_region_name = RegionOne
[placement]
$(service_auth nova)
[neutron]
$(service_auth nova)
[service_user]
send_service_user_token = true
$(service_auth nova)
EOF
        authtoken_section nova
    } >"${ETC}/nova/nova.conf"

    {
        cat <<EOF
[DEFAULT]
$(common_default)
state_path = ${DATA_DIR}/neutron
api_paste_config = ${VENV}/etc/neutron/api-paste.ini
auth_strategy = keystone
core_plugin = ml2
service_plugins =
allow_overlapping_ips = true
dhcp_agent_notification = false
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
[agent]
root_helper = /bin/true
[database]
connection = $(db_url neutron)
[nova]
$(service_auth neutron)
[placement]
$(service_auth neutron)
[quotas]
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_security_group = -1
quota_security_group_rule = -1
[oslo_concurrency]
lock_path = ${DATA_DIR}/neutron/lock
[oslo_messaging_notifications]
driver = noop
EOF
        authtoken_section neutron
    } >"${ETC}/neutron/neutron.conf"
    cat >"${ETC}/neutron/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = minicloud_bindall
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[ml2_type_vxlan]
vni_ranges = 1:10000
EOF

    {
        cat <<EOF
[DEFAULT]
$(common_default)
num_engine_workers = 1
region_name_for_services = RegionOne
deferred_auth_method = trusts
max_stacks_per_tenant = 10000
# A server that fails to build fails its stack at once (default: 5
# retries, about 90 s with the fake driver's NoValidHost).
action_retry_limit = 0
[database]
connection = $(db_url heat)
[paste_deploy]
api_paste_config = ${VENV}/etc/heat/api-paste.ini
[clients_keystone]
auth_uri = http://127.0.0.1:${KEYSTONE_PORT}
[trustee]
auth_type = password
auth_url = http://127.0.0.1:${KEYSTONE_PORT}
username = heat
password = ${SERVICE_PASSWORD}
user_domain_name = Default
[oslo_concurrency]
lock_path = ${DATA_DIR}/heat/lock
[oslo_messaging_notifications]
driver = noop
EOF
        authtoken_section heat
    } >"${ETC}/heat/heat.conf"
}

# -- database schemas -----------------------------------------------------------

sync_keystone() {
    local conf="${ETC}/keystone/keystone.conf" manage="${VENV}/bin/keystone-manage"
    "${manage}" --config-file "${conf}" db_sync
    "${manage}" --config-file "${conf}" fernet_setup --keystone-user root --keystone-group root
    "${manage}" --config-file "${conf}" credential_setup --keystone-user root --keystone-group root
    "${manage}" --config-file "${conf}" bootstrap \
        --bootstrap-password "${ADMIN_PASSWORD}" \
        --bootstrap-admin-url "$(auth_url)" \
        --bootstrap-internal-url "$(auth_url)" \
        --bootstrap-public-url "$(auth_url)" \
        --bootstrap-region-id RegionOne
}

sync_placement() {
    "${VENV}/bin/placement-manage" --config-file "${ETC}/placement/placement.conf" db sync
}

sync_glance() {
    "${VENV}/bin/glance-manage" --config-file "${ETC}/glance/glance-api.conf" db_sync
}

sync_nova() {
    local manage=("${VENV}/bin/nova-manage" --config-file "${ETC}/nova/nova.conf")
    "${manage[@]}" api_db sync
    "${manage[@]}" cell_v2 map_cell0 --database_connection "$(db_url nova_cell0)"
    local cells
    cells="$("${manage[@]}" cell_v2 list_cells)"
    if ! grep -q ' cell1 ' <<<"${cells}"; then
        "${manage[@]}" cell_v2 create_cell --name cell1
    fi
    "${manage[@]}" db sync
}

sync_neutron() {
    "${VENV}/bin/neutron-db-manage" --config-file "${ETC}/neutron/neutron.conf" \
        --config-file "${ETC}/neutron/ml2_conf.ini" upgrade heads
}

sync_heat() {
    "${VENV}/bin/heat-manage" --config-file "${ETC}/heat/heat.conf" db_sync
}

sync_databases() {
    # Runs the schema migrations (in parallel) when this venv has not yet
    # migrated these databases; a stamp per service records that it did.
    local want svc db stamp pids=() names=() i rc failed=()
    want="$(cat "${VENV}/.minicloud-stamp")"
    for db in "${NEW_DATABASES[@]}"; do
        rm -f "${DATA_DIR}/dbsync-${db%%_*}.stamp"
    done
    for svc in keystone placement glance nova neutron heat; do
        stamp="${DATA_DIR}/dbsync-${svc}.stamp"
        if [[ "$(cat "${stamp}" 2>/dev/null || true)" == "${want}" ]]; then
            continue
        fi
        # This script again, to bound each migration in time.
        timeout "${DBSYNC_TIMEOUT}" bash "${BASH_SOURCE[0]}" _sync "${svc}" \
            >"${LOG_DIR}/dbsync-${svc}.log" 2>&1 9>&- &
        pids+=($!)
        names+=("${svc}")
    done
    [[ ${#pids[@]} -gt 0 ]] || return 0
    log "migrating databases: ${names[*]}"
    for i in "${!pids[@]}"; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        if [[ "${rc}" == 0 ]]; then
            echo "${want}" >"${DATA_DIR}/dbsync-${names[$i]}.stamp"
        else
            failed+=("${names[$i]}")
            log "database sync of ${names[$i]} failed (rc ${rc})"
        fi
    done
    if [[ ${#failed[@]} -gt 0 ]]; then
        local dbs=() n
        for n in "${failed[@]}"; do dbs+=("dbsync-${n}"); done
        die "database migrations failed: ${failed[*]}" "${dbs[@]}"
    fi
}

# -- processes ------------------------------------------------------------------

pid_of() {
    # The pid of service $1 if it runs (from its pid file, checked to be a
    # process of this cloud's venv); fails otherwise.
    local pid
    pid="$(cat "${RUN_DIR}/$1.pid" 2>/dev/null || true)"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    is_ours "${pid}" || return 1
    printf '%s\n' "${pid}"
}

is_ours() {
    # Started by launch() for this state dir, recognised by its working
    # directory: gunicorn and the oslo services rewrite their command line
    # (setproctitle), which clobbers /proc/PID/cmdline and environ too.
    [[ "$(readlink "/proc/$1/cwd" 2>/dev/null || true)" == "${PROC_CWD}" ]]
}

stray_pids() {
    # Any process still running that launch() started for this state dir
    # (e.g. left by a start that was interrupted before its pid file).
    local p pid
    for p in /proc/[0-9]*; do
        pid="${p#/proc/}"
        [[ "${pid}" != "$$" ]] || continue
        if is_ours "${pid}"; then
            printf '%s\n' "${pid}"
        fi
    done
}

launch() {
    # launch NAME CMD...: run CMD in its own session (so its pid is also its
    # process group and session id), output appended to log/NAME.log.
    local name="$1"
    shift
    local pid_file="${RUN_DIR}/${name}.pid" log_file="${LOG_DIR}/${name}.log"
    rm -f "${pid_file}"
    printf '==== %s minicloud.sh: starting %s\n' "$(date '+%F %T')" "${name}" >>"${log_file}"
    mkdir -p "${PROC_CWD}"
    # shellcheck disable=SC2016 # $$, $1... belong to the inner shell
    setsid bash -c 'cd "$1" && echo "$$" >"$2" && shift 2 && exec "$@"' \
        minicloud-launch "${PROC_CWD}" "${pid_file}" "$@" \
        </dev/null >>"${log_file}" 2>&1 9>&- &
    local deadline=$((SECONDS + 10))
    until [[ -s "${pid_file}" ]]; do
        ((SECONDS < deadline)) || die "${name} did not start" "${name}"
        sleep 0.05
    done
}

start_api() {
    local name="$1" ctl=()
    local sock="${RUN_DIR}/${name}.ctl"
    # gunicorn 25 shares one control socket per user unless told otherwise.
    if ((${#sock} < 100)); then
        ctl=(--control-socket "${sock}")
    else
        ctl=(--no-control-socket)
    fi
    # --limit-request-line 0: nova-api asks Neutron for the ports of
    # every server of a list in one GET, longer than gunicorn's default
    # 4094 bytes once a project has some dozens of servers.
    launch "${name}" env MINICLOUD_ETC="${ETC}" "${VENV}/bin/gunicorn" \
        --bind "127.0.0.1:${API_PORT[${name}]}" \
        --workers "${API_WORKERS[${name}]}" --worker-class gthread \
        --threads "${API_THREADS[${name}]}" \
        --timeout 120 --graceful-timeout 5 --keep-alive 5 \
        --limit-request-line 0 \
        "${ctl[@]}" --pythonpath "${TOOLS_DIR}" \
        --error-logfile - --log-level warning \
        "minicloud_wsgi:${API_APP[${name}]}"
}

start_daemon() {
    local name="$1" conf
    case "${name}" in
        nova-*) conf="${ETC}/nova/nova.conf" ;;
        heat-*) conf="${ETC}/heat/heat.conf" ;;
        *) die "unknown service ${name}" none ;;
    esac
    launch "${name}" "${VENV}/bin/${name}" --config-file "${conf}"
}

wait_api() {
    # Until every named API answers over HTTP (any 2xx-4xx) or dies.
    local name code pending=("$@") left deadline=$((SECONDS + API_TIMEOUT))
    while [[ ${#pending[@]} -gt 0 ]]; do
        left=()
        for name in "${pending[@]}"; do
            pid_of "${name}" >/dev/null || die "${name} exited during startup" "${name}"
            code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
                "http://127.0.0.1:${API_PORT[${name}]}${API_PROBE[${name}]}" || true)"
            case "${code}" in
                [234]??) ;;
                5??) die "${name} answers HTTP ${code}" "${name}" ;;
                *) left+=("${name}") ;;
            esac
        done
        pending=("${left[@]+"${left[@]}"}")
        if [[ ${#pending[@]} -gt 0 ]]; then
            ((SECONDS < deadline)) || die "not answering after ${API_TIMEOUT}s: ${pending[*]}" "${pending[@]}"
            sleep 0.5
        fi
    done
}

check_daemons_alive() {
    local name
    for name in "$@"; do
        pid_of "${name}" >/dev/null || die "${name} exited" "${name}"
    done
}

port_in_use() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

bootstrap() {
    # Run a tools/minicloud/bootstrap.py step in the cloud venv.
    local endpoints
    endpoints="$(printf '{"identity": "%s", "compute": "%s", "placement": "%s", "image": "%s", "network": "%s", "orchestration": "%s"}' \
        "$(auth_url)" \
        "http://127.0.0.1:${NOVA_PORT}/v2.1" \
        "http://127.0.0.1:${PLACEMENT_PORT}" \
        "http://127.0.0.1:${GLANCE_PORT}" \
        "http://127.0.0.1:${NEUTRON_PORT}" \
        "http://127.0.0.1:${HEAT_PORT}/v1/%(project_id)s")"
    MINICLOUD_AUTH_URL="$(auth_url)" \
        MINICLOUD_ADMIN_PASSWORD="${ADMIN_PASSWORD}" \
        MINICLOUD_SERVICE_PASSWORD="${SERVICE_PASSWORD}" \
        MINICLOUD_SERVICEVM_PASSWORD="${SERVICEVM_PASSWORD}" \
        MINICLOUD_DEMO_PASSWORD="${DEMO_PASSWORD}" \
        MINICLOUD_ENDPOINTS="${endpoints}" \
        MINICLOUD_ENV_JSON="${ENV_JSON}" \
        MINICLOUD_ENV_SH="${ENV_SH}" \
        MINICLOUD_COMPUTE_HOST="${COMPUTE_HOST}" \
        MINICLOUD_NOTIFICATIONS_URL="$(transport_url)" \
        timeout "${BOOTSTRAP_TIMEOUT}" "${VENV}/bin/python" "${TOOLS_DIR}/bootstrap.py" "$1"
}

# -- commands -------------------------------------------------------------------

all_running() {
    local name
    for name in "${SERVICES[@]}"; do
        pid_of "${name}" >/dev/null || return 1
    done
}

any_running() {
    local name
    for name in "${SERVICES[@]}"; do
        if pid_of "${name}" >/dev/null; then
            return 0
        fi
    done
    [[ -n "$(stray_pids)" ]]
}

take_lock() {
    # fd 9 must not leak into the servers started under it (see backend,
    # launch), or they would hold the lock for as long as they run.
    mkdir -p "${MC_DIR}"
    exec 9>"${MC_DIR}/.lock"
    flock -w "${LOCK_TIMEOUT}" 9 || die "another minicloud.sh holds ${MC_DIR}/.lock" none
}

T_PHASE=${SECONDS}
phase() {
    log "$1 (+$((SECONDS - T_PHASE))s)"
}

start() {
    take_lock
    if all_running && [[ -s "${ENV_JSON}" ]] \
            && curl -sf -o /dev/null --max-time 5 "$(auth_url)"; then
        log "already running (state ${MC_DIR}); env: ${ENV_SH}"
        return 0
    fi
    if any_running; then
        # nova-compute with the fake driver cannot rejoin alone: restart all.
        log "partly running: stopping what is left before a full start"
        stop_services
    fi
    trap 'on_start_exit $?' EXIT
    T_PHASE=${SECONDS}
    mkdir -p "${LOG_DIR}" "${RUN_DIR}" "${DATA_DIR}"
    local port
    for port in "${API_PORT[@]}"; do
        if port_in_use "${port}"; then
            die "port ${port} on 127.0.0.1 is already in use (see MINICLOUD_*_PORT)" none
        fi
    done
    phase "venv"
    ensure_venv
    phase "PostgreSQL and RabbitMQ"
    backend postgres start || die "the cloud's PostgreSQL did not start" none
    backend rabbitmq start || die "the cloud's RabbitMQ did not start" none
    ensure_databases
    write_configs
    phase "database migrations"
    sync_databases

    phase "keystone"
    start_api keystone
    wait_api keystone
    bootstrap identity || die "creating users, projects and endpoints failed" keystone

    phase "placement, glance, neutron, nova, heat"
    local name
    for name in placement glance neutron nova-api heat-api; do
        start_api "${name}"
    done
    for name in nova-conductor nova-scheduler heat-engine; do
        start_daemon "${name}"
    done
    wait_api placement glance neutron nova-api heat-api
    check_daemons_alive nova-conductor nova-scheduler heat-engine

    phase "nova-compute"
    start_daemon nova-compute
    bootstrap wait-compute || die "nova-compute did not come up" nova-compute nova-conductor placement
    timeout 120 "${VENV}/bin/nova-manage" --config-file "${ETC}/nova/nova.conf" \
        cell_v2 discover_hosts >>"${LOG_DIR}/nova-manage.log" 2>&1 \
        || die "nova-manage cell_v2 discover_hosts failed" nova-manage
    bootstrap wait-hypervisor || die "the hypervisor is not listed" nova-api nova-compute

    phase "flavors, image, networks"
    bootstrap resources || die "creating flavors, image and networks failed" \
        nova-api glance neutron
    check_daemons_alive "${SERVICES[@]}"
    trap - EXIT
    log "ready in $((SECONDS - T_PHASE))s: $(auth_url); ${ENV_JSON}; try: tools/minicloud.sh env"
}

on_start_exit() {
    # A failed start stops what it started (its logs stay in log/), unless
    # MINICLOUD_KEEP_ON_FAILURE=1 keeps it running for a look.
    trap - EXIT
    [[ "$1" != 0 ]] || return 0
    if [[ "${MINICLOUD_KEEP_ON_FAILURE:-0}" == 1 ]]; then
        log "start failed; left running (MINICLOUD_KEEP_ON_FAILURE=1): tools/minicloud.sh stop"
        return 0
    fi
    log "start failed: stopping what it started (logs in ${LOG_DIR})"
    stop_services || true
    backend rabbitmq stop || true
    backend postgres stop || true
}

stop_services() {
    # SIGTERM to each service's process group, SIGKILL after KILL_AFTER s,
    # then the same for any stray process of this venv. By pid only.
    local name pid groups=() deadline
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        name="${SERVICES[$i]}"
        if pid="$(pid_of "${name}")"; then
            kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}" 2>/dev/null || true
            groups+=("${pid}")
        fi
        rm -f "${RUN_DIR}/${name}.pid"
    done
    deadline=$((SECONDS + KILL_AFTER))
    for pid in "${groups[@]+"${groups[@]}"}"; do
        while kill -0 -- "-${pid}" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                log "process group ${pid} still alive after ${KILL_AFTER}s: killing it"
                kill -KILL -- "-${pid}" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    done
    local strays
    deadline=$((SECONDS + KILL_AFTER))
    while strays="$(stray_pids)" && [[ -n "${strays}" ]]; do
        if ((SECONDS >= deadline)); then
            # shellcheck disable=SC2086 # a list of pids
            kill -KILL ${strays} 2>/dev/null || true
            sleep 0.5
            strays="$(stray_pids)"
            [[ -z "${strays}" ]] || die "could not kill: ${strays//$'\n'/ }" none
            break
        fi
        # shellcheck disable=SC2086
        kill -TERM ${strays} 2>/dev/null || true
        sleep 0.5
    done
}

stop() {
    take_lock
    local t0=${SECONDS}
    if any_running; then
        stop_services
        log "services stopped in $((SECONDS - t0))s"
    else
        log "services not running"
    fi
    backend rabbitmq stop || die "could not stop the cloud's RabbitMQ" none
    backend postgres stop || die "could not stop the cloud's PostgreSQL" none
    log "stopped in $((SECONDS - t0))s"
}

pss_mb() {
    # Proportional set size (shared pages split between their users) of
    # all processes in session $1, in MB.
    local p
    for p in $(ps -o pid= --sid "$1"); do
        cat "/proc/${p}/smaps_rollup" 2>/dev/null || true
    done | awk '$1 == "Pss:" {s += $2} END {print int(s / 1024)}'
}

status() {
    local name pid rss total=0 state rc=0 where
    printf '%-15s %-8s %-9s %8s  %s\n' SERVICE STATE PID PSS_MB WHERE
    for name in "${SERVICES[@]}"; do
        where="-"
        if [[ -n "${API_PORT[${name}]:-}" ]]; then
            where="http://127.0.0.1:${API_PORT[${name}]}"
        fi
        if pid="$(pid_of "${name}")"; then
            state=running
            rss="$(pss_mb "${pid}")"
            total=$((total + rss))
        else
            state=stopped pid=- rss=0 rc=3
        fi
        printf '%-15s %-8s %-9s %8s  %s\n' "${name}" "${state}" "${pid}" "${rss}" "${where}"
    done
    printf '%-15s %-8s %-9s %8s\n' "total" "" "" "${total}"
    backend postgres status || rc=3
    backend rabbitmq status || rc=3
    if [[ -s "${ENV_JSON}" ]]; then
        echo "env: ${ENV_JSON}"
    fi
    return "${rc}"
}

print_env() {
    [[ -s "${ENV_SH}" ]] || { log "no ${ENV_SH}: run tools/minicloud.sh start"; exit 1; }
    all_running || log "warning: the cloud is not (fully) running"
    cat "${ENV_SH}"
}

smoke() {
    all_running || die "the cloud is not running: tools/minicloud.sh start" none
    [[ -s "${ENV_JSON}" ]] || die "no ${ENV_JSON}" none
    timeout "${SMOKE_TIMEOUT}" "${VENV}/bin/python" "${TOOLS_DIR}/smoke.py" "${ENV_JSON}" \
        || die "smoke test failed" nova-api nova-conductor nova-scheduler nova-compute \
            neutron heat-api heat-engine
}

if [[ $# -eq 2 && "$1" == _sync ]]; then
    # Internal: one service's schema migrations (see sync_databases).
    case "$2" in
        keystone | placement | glance | nova | neutron | heat) "sync_$2" ;;
        *) usage ;;
    esac
    exit 0
fi
[[ $# -eq 1 ]] || usage
case "$1" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) print_env ;;
    smoke) smoke ;;
    *) usage ;;
esac
