"""Queries of the health watch: live conductors, the devices each
watches, and what their polls found."""

import datetime
import zlib

from oslo_utils import timeutils

from servicevm.common import states
from servicevm.db.sqlalchemy import enginefacade as ef
from servicevm.db.sqlalchemy import models
from servicevm.db.sqlalchemy import utils as du


def owner_index(device_id, count):
    """Which of ``count`` live conductors (sorted by host) watches
    ``device_id``."""
    return zlib.crc32(device_id.encode()) % count


class HealthQueries:

    def conductor_alive(self, context, host, dead_after):
        """Record that ``host`` is alive; returns the live hosts, sorted
        (seen within ``dead_after`` seconds)."""
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            row = session.get(models.Conductor, host)
            if row is None:
                session.add(models.Conductor(host=host, seen_at=now))
            else:
                row.seen_at = now
            session.flush()
            since = now - datetime.timedelta(seconds=dead_after)
            return sorted(r[0] for r in session.query(
                models.Conductor.host).filter(
                models.Conductor.seen_at >= since))

    def conductor_gone(self, context, host):
        with ef.writer.using(context) as session:
            session.query(models.Conductor).filter(
                models.Conductor.host == host).delete(
                synchronize_session=False)

    def devices_to_watch(self, context, host, hosts):
        """The ACTIVE devices no operation holds that ``host`` watches
        among the live ``hosts``: each device is watched by one of them
        (a dead conductor's devices go to the others)."""
        if host not in hosts:
            return []
        mine = hosts.index(host)
        with ef.reader.using(context) as session:
            rows = session.query(models.Device).filter(
                models.Device.status == states.ACTIVE,
                models.Device.operation_id.is_(None)).all()
            return [d for d in rows
                    if owner_index(d.id, len(hosts)) == mine]

    def device_seen(self, context, device_id, values):
        """What a poll found of an idle ACTIVE device (power state, usage,
        last_seen); nothing when an operation took it meanwhile."""
        with ef.writer.using(context) as session:
            return bool(session.query(models.Device).filter(
                models.Device.id == device_id,
                models.Device.status == states.ACTIVE,
                models.Device.operation_id.is_(None)).update(
                values, synchronize_session=False))

    def device_dead(self, context, device_id, reason, event):
        """An idle ACTIVE device whose VM is gone or in error is DEAD,
        with ``reason``, and ``event`` is recorded; False when an
        operation took it, or its status changed, meanwhile."""
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            changed = session.query(models.Device).filter(
                models.Device.id == device_id,
                models.Device.status == states.ACTIVE,
                models.Device.operation_id.is_(None)).update(
                {'status': states.DEAD, 'status_reason': reason,
                 'updated_at': now}, synchronize_session=False)
            if changed:
                session.add(du.event(context, **event))
            return bool(changed)
