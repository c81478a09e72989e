"""Smoke check of a running minicloud (tools/minicloud.sh smoke).

    <cloud venv>/bin/python smoke.py <state>/minicloud/env.json

As demo1: boot a server on mgmt-net to ACTIVE, check its Neutron port is
bound, delete it and wait until server and port are gone; take a Heat stack
with one OS::Nova::Server to CREATE_COMPLETE and delete it; boot with the
unschedulable flavor and expect ERROR with a fault. Prints timings; exits
non-zero on the first failure, after cleaning up what it created.
"""

import json
import sys
import time

from heatclient import client as heat_client
from heatclient import exc as heat_exc
from keystoneauth1 import adapter
from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

NOVA_MICROVERSION = "2.79"
TIMINGS = []


class SmokeFailure(Exception):
    pass


def log(msg):
    print("smoke: %s" % msg, flush=True)


def session(env, prefix):
    auth = v3.Password(
        auth_url=env["MINICLOUD_AUTH_URL"],
        username=env[prefix + "_USER"], password=env[prefix + "_PASSWORD"],
        project_name=env[prefix + "_PROJECT"],
        user_domain_name=env["MINICLOUD_DOMAIN"],
        project_domain_name=env["MINICLOUD_DOMAIN"])
    return ks_session.Session(auth=auth, timeout=60)


def wait(what, fn, timeout, interval=0.2):
    """Poll fn until it returns a true value; return (value, seconds)."""
    t0 = time.monotonic()
    while True:
        value = fn()
        if value:
            return value, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise SmokeFailure("timed out after %ss waiting for %s"
                               % (timeout, what))
        time.sleep(interval)


def timed(label, seconds):
    TIMINGS.append((label, seconds))
    log("%-38s %6.2f s" % (label, seconds))


def server_status(nova, server_id):
    try:
        return nova.servers.get(server_id)
    except nova_exc.NotFound:
        return None


def server_gone(nova, server_id):
    return server_status(nova, server_id) is None


def settled(nova, server_id):
    s = nova.servers.get(server_id)
    return s if s.status in ("ACTIVE", "ERROR") else None


def ports_of(neutron, device_id):
    return neutron.get("/v2.0/ports", params={
        "device_id": device_id}).json()["ports"]


def check_server_lifecycle(env, nova, neutron_admin, cleanup):
    name = "smoke-%d" % time.time()
    t0 = time.monotonic()
    server = nova.servers.create(
        name, env["MINICLOUD_IMAGE"], env["MINICLOUD_FLAVOR_TINY"],
        nics=[{"net-id": env["MINICLOUD_MGMT_NET"]}])
    cleanup.append(("server", server.id))
    server, _ = wait("server %s to settle" % server.id,
                     lambda: settled(nova, server.id), 180)
    boot = time.monotonic() - t0
    if server.status != "ACTIVE":
        raise SmokeFailure("server %s went to %s: %s" % (
            server.id, server.status, getattr(server, "fault", {})))
    timed("boot to ACTIVE", boot)

    ports = ports_of(neutron_admin, server.id)
    if len(ports) != 1:
        raise SmokeFailure("expected 1 port for %s, found %d" % (
            server.id, len(ports)))
    port = ports[0]
    if port["network_id"] != env["MINICLOUD_MGMT_NET"]:
        raise SmokeFailure("port %s is on network %s, not mgmt-net" % (
            port["id"], port["network_id"]))
    if (port.get("binding:vif_type") in (None, "unbound", "binding_failed")
            or port.get("binding:host_id") != env["MINICLOUD_COMPUTE_HOST"]):
        raise SmokeFailure("port %s is not bound: vif_type=%s host=%s" % (
            port["id"], port.get("binding:vif_type"),
            port.get("binding:host_id")))
    addresses = [ip["ip_address"] for ip in port["fixed_ips"]]
    log("port %s bound on %s (vif_type %s, status %s, ips %s)" % (
        port["id"], port["binding:host_id"], port["binding:vif_type"],
        port["status"], ", ".join(addresses)))

    t0 = time.monotonic()
    nova.servers.delete(server.id)
    _, gone = wait("server %s to be deleted" % server.id,
                   lambda: server_gone(nova, server.id), 120)
    timed("delete until gone", gone)
    cleanup.remove(("server", server.id))
    _, port_gone = wait("port %s to be deleted" % port["id"],
                        lambda: not ports_of(neutron_admin, server.id), 60)
    timed("  ... and its port gone", time.monotonic() - t0)


HOT = """
heat_template_version: 2021-04-16
description: minicloud smoke stack
parameters:
  image: {type: string}
  flavor: {type: string}
  network: {type: string}
resources:
  server:
    type: OS::Nova::Server
    properties:
      image: {get_param: image}
      flavor: {get_param: flavor}
      user_data_format: RAW
      networks:
        - network: {get_param: network}
outputs:
  server_id:
    value: {get_resource: server}
"""


def stack_state(heat, stack_id):
    try:
        return heat.stacks.get(stack_id).stack_status
    except heat_exc.HTTPNotFound:
        return "DELETE_COMPLETE"


def check_heat(env, heat, cleanup):
    name = "smoke-stack-%d" % time.time()
    t0 = time.monotonic()
    stack_id = heat.stacks.create(
        stack_name=name, template=HOT,
        parameters={"image": env["MINICLOUD_IMAGE"],
                    "flavor": env["MINICLOUD_FLAVOR_TINY"],
                    "network": env["MINICLOUD_MGMT_NET_NAME"]})["stack"]["id"]
    cleanup.append(("stack", stack_id))
    status, _ = wait("stack %s" % name, lambda: (
        lambda st: st if not st.endswith("IN_PROGRESS") else None)(
            stack_state(heat, stack_id)), 300, 0.5)
    if status != "CREATE_COMPLETE":
        reason = heat.stacks.get(stack_id).stack_status_reason
        raise SmokeFailure("stack %s is %s: %s" % (name, status, reason))
    timed("heat stack CREATE_COMPLETE", time.monotonic() - t0)

    t0 = time.monotonic()
    heat.stacks.delete(stack_id)
    status, _ = wait("stack %s deletion" % name, lambda: (
        lambda st: st if not st.endswith("IN_PROGRESS") else None)(
            stack_state(heat, stack_id)), 300, 0.5)
    if status != "DELETE_COMPLETE":
        raise SmokeFailure("stack %s is %s after delete" % (name, status))
    cleanup.remove(("stack", stack_id))
    timed("heat stack DELETE_COMPLETE", time.monotonic() - t0)


def check_failed_boot(env, nova, cleanup):
    name = "smoke-huge-%d" % time.time()
    t0 = time.monotonic()
    server = nova.servers.create(
        name, env["MINICLOUD_IMAGE"], env["MINICLOUD_FLAVOR_HUGE"],
        nics=[{"net-id": env["MINICLOUD_MGMT_NET"]}])
    cleanup.append(("server", server.id))
    server, _ = wait("server %s to settle" % server.id,
                     lambda: settled(nova, server.id), 180)
    if server.status != "ERROR":
        raise SmokeFailure("huge server %s is %s, expected ERROR" % (
            server.id, server.status))
    fault = getattr(server, "fault", None) or {}
    if not fault.get("message"):
        raise SmokeFailure("huge server %s is in ERROR without a fault" %
                           server.id)
    timed("huge flavor to ERROR", time.monotonic() - t0)
    log("fault: %s" % fault["message"])
    nova.servers.delete(server.id)
    wait("server %s to be deleted" % server.id,
         lambda: server_gone(nova, server.id), 120)
    cleanup.remove(("server", server.id))


def clean(nova, heat, cleanup):
    for kind, rid in reversed(cleanup):
        try:
            if kind == "server":
                nova.servers.delete(rid)
            else:
                heat.stacks.delete(rid)
            log("cleanup: deleted %s %s" % (kind, rid))
        except Exception as exc:  # best effort: report, go on
            log("cleanup: could not delete %s %s: %s" % (kind, rid, exc))


def main(argv):
    if len(argv) != 2:
        print("usage: smoke.py ENV_JSON", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        env = json.load(f)
    t_all = time.monotonic()
    demo = session(env, "MINICLOUD_DEMO1")
    admin = session(env, "MINICLOUD_ADMIN")
    nova = nova_client.Client(NOVA_MICROVERSION, session=demo)
    heat = heat_client.Client("1", session=demo)
    neutron_admin = adapter.Adapter(admin, service_type="network",
                                    interface="public",
                                    region_name=env["MINICLOUD_REGION"])
    cleanup = []
    try:
        check_server_lifecycle(env, nova, neutron_admin, cleanup)
        check_heat(env, heat, cleanup)
        check_failed_boot(env, nova, cleanup)
    except SmokeFailure as exc:
        log("FAILED: %s" % exc)
        clean(nova, heat, cleanup)
        return 1
    except Exception:
        clean(nova, heat, cleanup)
        raise
    timed("smoke total", time.monotonic() - t_all)
    log("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
