"""Create the minicloud's users, catalog and test resources (idempotent).

Run by tools/minicloud.sh in the cloud venv:

    python bootstrap.py identity         projects, users, roles, catalog
    python bootstrap.py wait-compute     nova-compute up, its inventory known
    python bootstrap.py wait-hypervisor  the hypervisor listed by the API
    python bootstrap.py resources        flavors, image, networks; env files

Everything is plain REST through keystoneauth1 sessions. Settings come from
MINICLOUD_* environment variables set by the shell script (see SETTINGS).
"""

import json
import os
import shlex
import sys
import time

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session

REGION = "RegionOne"
DOMAIN = "Default"
HTTP_TIMEOUT = 60

SETTINGS = [
    "MINICLOUD_AUTH_URL", "MINICLOUD_ADMIN_PASSWORD",
    "MINICLOUD_SERVICE_PASSWORD", "MINICLOUD_SERVICEVM_PASSWORD",
    "MINICLOUD_DEMO_PASSWORD", "MINICLOUD_ENDPOINTS", "MINICLOUD_ENV_JSON",
    "MINICLOUD_ENV_SH", "MINICLOUD_COMPUTE_HOST",
    "MINICLOUD_NOTIFICATIONS_URL",
]

# One service user per OpenStack service (admin + service roles in project
# "service"), named after it; their password is MINICLOUD_SERVICE_PASSWORD.
SERVICE_USERS = ["nova", "placement", "glance", "neutron", "heat"]
SERVICES = [
    # name, type, description
    ("nova", "compute", "minicloud Compute"),
    ("placement", "placement", "minicloud Placement"),
    ("glance", "image", "minicloud Image"),
    ("neutron", "network", "minicloud Networking"),
    ("heat", "orchestration", "minicloud Orchestration"),
]

FLAVORS = {
    # key: (name, vcpus, ram MB, disk GB). The fake driver reports
    # 1000 VCPU (x4 allocation ratio, max_unit 1000) and 800000 MB RAM, so
    # "huge" can never be placed: NoValidHost, the server goes to ERROR.
    "TINY": ("m1.tiny", 1, 64, 1),
    "SMALL": ("m1.small", 1, 128, 1),
    "HUGE": ("m1.unschedulable", 100000, 2000000, 1),
}
IMAGE_NAME = "cirros-fake"
IMAGE_BYTES = b"minicloud fake image\n".ljust(1024, b"\0")
NETWORKS = {
    # key: (network name, subnet name, cidr)
    "MGMT": ("mgmt-net", "mgmt-subnet", "10.10.0.0/24"),
    "DATA": ("data-net", "data-subnet", "10.20.0.0/24"),
}
DEMOS = ["demo1", "demo2"]


def log(msg):
    print("bootstrap: %s" % msg, file=sys.stderr, flush=True)


def settings():
    missing = [k for k in SETTINGS if not os.environ.get(k)]
    if missing:
        raise SystemExit("bootstrap: missing settings %s" % ", ".join(missing))
    s = {k: os.environ[k] for k in SETTINGS}
    s["MINICLOUD_ENDPOINTS"] = json.loads(s["MINICLOUD_ENDPOINTS"])
    return s


def make_session(auth_url, username, password, project):
    auth = v3.Password(auth_url=auth_url, username=username,
                       password=password, user_domain_name=DOMAIN,
                       project_name=project, project_domain_name=DOMAIN)
    return ks_session.Session(auth=auth, timeout=HTTP_TIMEOUT)


def api(sess, service_type, **kw):
    return adapter.Adapter(sess, service_type=service_type,
                           interface="public", region_name=REGION, **kw)


def wait_for(what, fn, timeout, interval=0.5):
    """Call fn until it returns a true value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            result = fn()
        except (ks_exc.ConnectFailure, ks_exc.ServiceUnavailable,
                ks_exc.BadGateway, ks_exc.GatewayTimeout) as exc:
            result, last_exc = None, exc
        if result:
            return result
        time.sleep(interval)
    raise SystemExit("bootstrap: timed out after %ss waiting for %s%s" % (
        timeout, what, " (last error: %s)" % last_exc if last_exc else ""))


# -- identity ---------------------------------------------------------------

class Identity:
    def __init__(self, sess):
        self.ks = api(sess, "identity")

    def _find(self, collection, **query):
        resp = self.ks.get("/%s" % collection, params=query)
        items = resp.json()[collection]
        return items[0] if items else None

    def domain_id(self):
        return self._find("domains", name=DOMAIN)["id"]

    def project(self, name, domain_id, description=""):
        p = self._find("projects", name=name, domain_id=domain_id)
        if p is None:
            p = self.ks.post("/projects", json={"project": {
                "name": name, "domain_id": domain_id,
                "description": description}}).json()["project"]
            log("created project %s" % name)
        return p["id"]

    def role(self, name):
        r = self._find("roles", name=name)
        if r is None:
            r = self.ks.post("/roles",
                             json={"role": {"name": name}}).json()["role"]
            log("created role %s" % name)
        return r["id"]

    def user(self, name, password, domain_id, default_project_id=None):
        u = self._find("users", name=name, domain_id=domain_id)
        body = {"name": name, "domain_id": domain_id, "password": password,
                "enabled": True}
        if default_project_id:
            body["default_project_id"] = default_project_id
        if u is None:
            u = self.ks.post("/users", json={"user": body}).json()["user"]
            log("created user %s" % name)
        else:
            # Keeps the password in step with the script's settings.
            self.ks.patch("/users/%s" % u["id"], json={"user": body})
        return u["id"]

    def grant(self, project_id, user_id, role_id):
        self.ks.put("/projects/%s/users/%s/roles/%s" % (
            project_id, user_id, role_id))

    def service(self, name, stype, description):
        s = self._find("services", type=stype)
        if s is None:
            s = self.ks.post("/services", json={"service": {
                "name": name, "type": stype, "description": description,
                "enabled": True}}).json()["service"]
            log("created service %s (%s)" % (name, stype))
        return s["id"]

    def endpoints(self, service_id, url):
        existing = self.ks.get("/endpoints", params={
            "service_id": service_id}).json()["endpoints"]
        for interface in ("public", "internal", "admin"):
            mine = [e for e in existing if e["interface"] == interface]
            if not mine:
                self.ks.post("/endpoints", json={"endpoint": {
                    "service_id": service_id, "interface": interface,
                    "url": url, "region_id": REGION, "enabled": True}})
                continue
            for e in mine:
                if e["url"] != url or e.get("region_id") != REGION:
                    self.ks.patch("/endpoints/%s" % e["id"], json={
                        "endpoint": {"url": url, "region_id": REGION}})


def do_identity(s):
    sess = make_session(s["MINICLOUD_AUTH_URL"], "admin",
                        s["MINICLOUD_ADMIN_PASSWORD"], "admin")
    idt = Identity(sess)
    wait_for("keystone", lambda: idt.domain_id(), 60)
    domain_id = idt.domain_id()
    roles = {name: idt.role(name)
             for name in ("admin", "member", "reader", "service")}
    service_project = idt.project("service", domain_id, "minicloud services")
    for name in SERVICE_USERS:
        uid = idt.user(name, s["MINICLOUD_SERVICE_PASSWORD"], domain_id,
                       service_project)
        idt.grant(service_project, uid, roles["admin"])
        idt.grant(service_project, uid, roles["service"])
    uid = idt.user("servicevm", s["MINICLOUD_SERVICEVM_PASSWORD"], domain_id,
                   service_project)
    idt.grant(service_project, uid, roles["admin"])
    for demo in DEMOS:
        pid = idt.project(demo, domain_id, "minicloud demo project")
        uid = idt.user(demo, s["MINICLOUD_DEMO_PASSWORD"], domain_id, pid)
        idt.grant(pid, uid, roles["member"])
    for name, stype, description in SERVICES:
        sid = idt.service(name, stype, description)
        idt.endpoints(sid, s["MINICLOUD_ENDPOINTS"][stype])
    log("identity ready")


# -- compute node -------------------------------------------------------------

def do_wait_compute(s, timeout=180):
    sess = make_session(s["MINICLOUD_AUTH_URL"], "admin",
                        s["MINICLOUD_ADMIN_PASSWORD"], "admin")
    nova = api(sess, "compute")
    placement = api(sess, "placement",
                    default_microversion="1.14")
    host = s["MINICLOUD_COMPUTE_HOST"]

    def compute_up():
        svcs = nova.get("/os-services", params={
            "binary": "nova-compute", "host": host}).json()["services"]
        return any(x["state"] == "up" for x in svcs)

    def provider_ready():
        rps = placement.get("/resource_providers", params={
            "name": host}).json()["resource_providers"]
        if not rps:
            return False
        inv = placement.get("/resource_providers/%s/inventories"
                            % rps[0]["uuid"]).json()["inventories"]
        return "VCPU" in inv

    wait_for("nova-compute %s to report up" % host, compute_up, timeout)
    wait_for("resource provider %s in placement" % host, provider_ready,
             timeout)
    log("nova-compute %s is up and has inventory in placement" % host)


def do_wait_hypervisor(s, timeout=60):
    """After cell_v2 discover_hosts: the hypervisor is listed by the API."""
    sess = make_session(s["MINICLOUD_AUTH_URL"], "admin",
                        s["MINICLOUD_ADMIN_PASSWORD"], "admin")
    nova = api(sess, "compute")

    def listed():
        hvs = nova.get("/os-hypervisors").json()["hypervisors"]
        return any(h.get("state") == "up" for h in hvs)

    wait_for("a hypervisor in /os-hypervisors", listed, timeout)


# -- resources ----------------------------------------------------------------

def ensure_flavor(nova, name, vcpus, ram, disk):
    flavors = nova.get("/flavors/detail", params={
        "is_public": "None"}).json()["flavors"]
    for f in flavors:
        if f["name"] == name:
            if (f["vcpus"], f["ram"], f["disk"]) != (vcpus, ram, disk):
                raise SystemExit("bootstrap: flavor %s exists with other sizes"
                                 % name)
            return f["id"]
    f = nova.post("/flavors", json={"flavor": {
        "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
        "os-flavor-access:is_public": True}}).json()["flavor"]
    log("created flavor %s" % name)
    return f["id"]


def ensure_image(glance):
    images = glance.get("/v2/images",
                        params={"name": IMAGE_NAME}).json()["images"]
    for img in images:
        if img["status"] == "active":
            return img["id"]
        # A leftover of an interrupted upload.
        glance.delete("/v2/images/%s" % img["id"])
        log("deleted %s image %s in state %s" % (
            IMAGE_NAME, img["id"], img["status"]))
    img = glance.post("/v2/images", json={
        "name": IMAGE_NAME, "disk_format": "raw", "container_format": "bare",
        "visibility": "public", "min_disk": 0, "min_ram": 0}).json()
    glance.put("/v2/images/%s/file" % img["id"], data=IMAGE_BYTES,
               headers={"Content-Type": "application/octet-stream"})
    wait_for("image %s to become active" % img["id"],
             lambda: glance.get("/v2/images/%s" % img["id"]).json()["status"]
             == "active", 60)
    log("created image %s (%d bytes)" % (IMAGE_NAME, len(IMAGE_BYTES)))
    return img["id"]


def ensure_network(neutron, project_id, net_name, subnet_name, cidr):
    nets = neutron.get("/v2.0/networks", params={
        "name": net_name}).json()["networks"]
    if nets:
        net = nets[0]
    else:
        net = neutron.post("/v2.0/networks", json={"network": {
            "name": net_name, "shared": True, "project_id": project_id,
            "admin_state_up": True}}).json()["network"]
        log("created network %s" % net_name)
    subnets = neutron.get("/v2.0/subnets", params={
        "network_id": net["id"], "name": subnet_name}).json()["subnets"]
    if subnets:
        subnet = subnets[0]
    else:
        subnet = neutron.post("/v2.0/subnets", json={"subnet": {
            "name": subnet_name, "network_id": net["id"], "cidr": cidr,
            "ip_version": 4, "enable_dhcp": False,
            "project_id": project_id}}).json()["subnet"]
        log("created subnet %s %s" % (subnet_name, cidr))
    return net["id"], subnet["id"]


def do_resources(s):
    auth_url = s["MINICLOUD_AUTH_URL"]
    sess = make_session(auth_url, "admin", s["MINICLOUD_ADMIN_PASSWORD"],
                        "admin")
    idt = Identity(sess)
    domain_id = idt.domain_id()
    service_project = idt.project("service", domain_id)
    nova = api(sess, "compute", default_microversion="2.55")
    glance = api(sess, "image")
    neutron = api(sess, "network")

    env = {
        "OS_AUTH_URL": auth_url,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_REGION_NAME": REGION,
        "OS_USERNAME": "admin",
        "OS_PASSWORD": s["MINICLOUD_ADMIN_PASSWORD"],
        "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": DOMAIN,
        "OS_PROJECT_DOMAIN_NAME": DOMAIN,
        "MINICLOUD_AUTH_URL": auth_url,
        "MINICLOUD_REGION": REGION,
        "MINICLOUD_ADMIN_USER": "admin",
        "MINICLOUD_ADMIN_PASSWORD": s["MINICLOUD_ADMIN_PASSWORD"],
        "MINICLOUD_ADMIN_PROJECT": "admin",
        "MINICLOUD_SERVICEVM_USER": "servicevm",
        "MINICLOUD_SERVICEVM_PASSWORD": s["MINICLOUD_SERVICEVM_PASSWORD"],
        "MINICLOUD_SERVICEVM_PROJECT": "service",
        "MINICLOUD_SERVICEVM_PROJECT_ID": service_project,
        "MINICLOUD_DOMAIN": DOMAIN,
        "MINICLOUD_COMPUTE_HOST": s["MINICLOUD_COMPUTE_HOST"],
        # Nova's versioned notifications: this bus, topic
        # versioned_notifications.
        "MINICLOUD_NOTIFICATIONS_URL": s["MINICLOUD_NOTIFICATIONS_URL"],
        "MINICLOUD_ENV_JSON": s["MINICLOUD_ENV_JSON"],
    }
    for demo in DEMOS:
        key = "MINICLOUD_%s_" % demo.upper()
        env[key + "USER"] = demo
        env[key + "PASSWORD"] = s["MINICLOUD_DEMO_PASSWORD"]
        env[key + "PROJECT"] = demo
        env[key + "PROJECT_ID"] = idt.project(demo, domain_id)
    for key, (name, vcpus, ram, disk) in FLAVORS.items():
        env["MINICLOUD_FLAVOR_%s" % key] = ensure_flavor(nova, name, vcpus,
                                                         ram, disk)
        env["MINICLOUD_FLAVOR_%s_NAME" % key] = name
    env["MINICLOUD_IMAGE"] = ensure_image(glance)
    env["MINICLOUD_IMAGE_NAME"] = IMAGE_NAME
    for key, (net_name, subnet_name, cidr) in NETWORKS.items():
        net_id, subnet_id = ensure_network(neutron, service_project, net_name,
                                           subnet_name, cidr)
        env["MINICLOUD_%s_NET" % key] = net_id
        env["MINICLOUD_%s_NET_NAME" % key] = net_name
        env["MINICLOUD_%s_SUBNET" % key] = subnet_id
        env["MINICLOUD_%s_CIDR" % key] = cidr
    for stype, url in sorted(s["MINICLOUD_ENDPOINTS"].items()):
        env["MINICLOUD_%s_URL" % stype.upper()] = url

    write_atomic(s["MINICLOUD_ENV_JSON"],
                 json.dumps(env, indent=2, sort_keys=True) + "\n")
    write_atomic(s["MINICLOUD_ENV_SH"], "".join(
        "export %s=%s\n" % (k, shlex.quote(v))
        for k, v in sorted(env.items())))
    log("resources ready; environment in %s" % s["MINICLOUD_ENV_JSON"])


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    steps = {"identity": do_identity, "wait-compute": do_wait_compute,
             "wait-hypervisor": do_wait_hypervisor,
             "resources": do_resources}
    if len(argv) != 2 or argv[1] not in steps:
        print("usage: bootstrap.py %s" % "|".join(steps), file=sys.stderr)
        return 2
    steps[argv[1]](settings())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
