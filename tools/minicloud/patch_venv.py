"""Patch the minicloud venv (test cloud only, never servicevm's own venv).

    <venv>/bin/python patch_venv.py apply|check

1. oslo.messaging: the RPC reply waiter polls its queue with a fixed
   time.sleep(0.5), so every RPC call costs up to 0.5 s (a fake boot takes
   6-7 s instead of 1-2 s). Lower the poll interval.
2. neutron: migration d553edeb540f runs a MySQL-only ALTER TABLE; make it a
   no-op on other dialects so the Neutron schema can live on PostgreSQL.
3. nova's fake virt driver takes a snapshot without uploading any image
   data, so the snapshot image stays ``queued`` for ever (and cannot be
   rebuilt from). Upload 1 KiB, as a real driver uploads the disk.

Both edits are marked, idempotent, and verified: `apply` and `check` exit
non-zero when a target file or line is not found (e.g. after a version bump),
so a silently missed patch cannot go unnoticed.
"""

import importlib.util
import os
import sys

MARK = "minicloud-patch"
REPLY_POLL = "0.01"


def _module_file(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        raise SystemExit("patch_venv: module %s not found" % name)
    return spec.origin


def _neutron_migration():
    pkg = os.path.dirname(_module_file("neutron"))
    path = os.path.join(pkg, "db", "migration", "alembic_migrations",
                        "versions", "2025.2", "expand",
                        "d553edeb540f_tag_case_sensitive.py")
    if not os.path.exists(path):
        raise SystemExit("patch_venv: %s not found" % path)
    return path


def _oslo_messaging_amqpdriver():
    return _module_file("oslo_messaging._drivers.amqpdriver")


def _patch_reply_poll(text):
    # Only the sleep inside ReplyWaiters.get().
    start = text.find("class ReplyWaiters")
    if start < 0:
        return None
    old = "            except queue.Empty:\n                time.sleep(0.5)\n"
    new = ("            except queue.Empty:\n"
           "                time.sleep(%s)  # %s: was 0.5\n"
           % (REPLY_POLL, MARK))
    pos = text.find(old, start)
    if pos < 0:
        return None
    return text[:pos] + new + text[pos + len(old):]


def _patch_neutron_migration(text):
    old = "def upgrade():\n    try:\n"
    new = ("def upgrade():\n"
           "    # %s: MySQL-only DDL, nothing to do on other dialects\n"
           "    if op.get_bind().dialect.name != 'mysql':\n"
           "        return\n"
           "    try:\n" % MARK)
    if text.count(old) != 1 or "CONVERT TO CHARACTER SET" not in text:
        return None
    return text.replace(old, new)


def _nova_fake_driver():
    return _module_file("nova.virt.fake")


def _patch_fake_snapshot(text):
    upload = "update_task_state(task_state=task_states.IMAGE_UPLOADING)\n"
    old = ("        " + upload +
           "\n    def reboot(")
    new = ("        " + upload +
           "        # %s: upload some data, so the image becomes active\n"
           "        import io as _io\n"
           "        from nova.image import glance as _glance\n"
           "        _glance.API().update(\n"
           "            context, image_id,\n"
           "            {'disk_format': 'raw', 'container_format': 'bare'},\n"
           "            data=_io.BytesIO(b'0' * 1024))\n"
           "\n    def reboot(" % MARK)
    if text.count(old) != 1:
        return None
    return text.replace(old, new)


PATCHES = [
    ("oslo.messaging reply poll", _oslo_messaging_amqpdriver,
     _patch_reply_poll),
    ("neutron migration d553edeb540f", _neutron_migration,
     _patch_neutron_migration),
    ("nova fake driver snapshot upload", _nova_fake_driver,
     _patch_fake_snapshot),
]


def main(argv):
    if len(argv) != 2 or argv[1] not in ("apply", "check"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    failed = False
    for name, locate, patch in PATCHES:
        path = locate()
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if MARK in text:
            print("patch_venv: %s: applied (%s)" % (name, path))
            continue
        if argv[1] == "check":
            print("patch_venv: %s: NOT applied (%s)" % (name, path),
                  file=sys.stderr)
            failed = True
            continue
        patched = patch(text)
        if patched is None:
            print("patch_venv: %s: target not found in %s" % (name, path),
                  file=sys.stderr)
            failed = True
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(patched)
        print("patch_venv: %s: patched %s" % (name, path))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
