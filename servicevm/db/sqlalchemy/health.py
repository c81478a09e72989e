"""Queries of the health watch: live conductors, the devices each
watches, and what their polls found."""

import datetime
import zlib

from oslo_utils import timeutils

from servicevm.common import secrets
from servicevm.common import states
from servicevm.db.sqlalchemy import enginefacade as ef
from servicevm.db.sqlalchemy import models
from servicevm.db.sqlalchemy import utils as du


def _chunks(items, size=500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def owner_index(device_id, count):
    """Which of ``count`` live conductors (sorted by host) watches
    ``device_id``."""
    return zlib.crc32(device_id.encode()) % count


class HealthQueries:

    def conductor_alive(self, context, host, dead_after, vim_calls=None):
        """Record that ``host`` is alive (and the VIM calls it made so
        far); returns the live hosts, sorted (seen within ``dead_after``
        seconds)."""
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            row = session.get(models.Conductor, host)
            if row is None:
                session.add(models.Conductor(host=host, seen_at=now,
                                             vim_calls=vim_calls))
            else:
                row.seen_at = now
                if vim_calls is not None and vim_calls != row.vim_calls:
                    row.vim_calls = vim_calls
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
        among the live ``hosts`` (each device is watched by one of them;
        a dead conductor's devices go to the others), as dicts with
        their kwargs (secrets unsealed, for the drivers) and the ids of
        their service instances: one query each for devices, kwargs and
        bindings, however many devices."""
        if host not in hosts:
            return []
        mine = hosts.index(host)
        Device = models.Device
        columns = (Device.id, Device.project_id, Device.user_id,
                   Device.name, Device.template_id, Device.instance_id,
                   Device.mgmt_address, Device.status, Device.power_state,
                   Device.usage, Device.trust_id, Device.operation_id,
                   Device.monitor)
        with ef.reader.using(context) as session:
            rows = [r for r in session.query(*columns).filter(
                Device.status == states.ACTIVE,
                Device.operation_id.is_(None))
                if owner_index(r.id, len(hosts)) == mine]
            devices = {r.id: dict(r._mapping, kwargs={}, services=[])
                       for r in rows}
            for chunk in _chunks(list(devices)):
                for arg in session.query(models.DeviceArg).filter(
                        models.DeviceArg.device_id.in_(chunk)):
                    devices[arg.device_id]['kwargs'][arg.key] = \
                        secrets.reveal(arg.value)
                for binding in session.query(
                        models.ServiceDeviceBinding).filter(
                        models.ServiceDeviceBinding.device_id.in_(chunk)):
                    devices[binding.device_id]['services'].append(
                        binding.service_instance_id)
            return list(devices.values())

    def devices_seen(self, context, device_ids, changes):
        """What a pass found of idle ACTIVE devices: ``last_seen`` of all
        of ``device_ids`` in one statement, and ``changes`` ({device id:
        values}: a new power state or usage) one by one; devices an
        operation took meanwhile are left alone."""
        now = timeutils.utcnow()
        Device = models.Device
        with ef.writer.using(context) as session:
            for chunk in _chunks(list(device_ids)):
                session.query(Device).filter(
                    Device.id.in_(chunk), Device.status == states.ACTIVE,
                    Device.operation_id.is_(None)).update(
                    {'last_seen': now}, synchronize_session=False)
            for device_id, values in changes.items():
                session.query(Device).filter(
                    Device.id == device_id, Device.status == states.ACTIVE,
                    Device.operation_id.is_(None)).update(
                    values, synchronize_session=False)

    def heals_since(self, context, device_id, since):
        """How many heal operations the health watch started for
        ``device_id`` since ``since`` (not those asked by hand)."""
        Op = models.Operation
        with ef.reader.using(context) as session:
            return sum(1 for (params,) in session.query(Op.params).filter(
                Op.resource_id == device_id, Op.kind == 'heal',
                Op.created_at >= since)
                if not (params or {}).get('by_hand'))

    def device_monitor(self, context, device_id, values):
        """Keep the liveness monitor's last result on the device."""
        with ef.writer.using(context) as session:
            session.query(models.Device).filter(
                models.Device.id == device_id).update(
                {'monitor': values}, synchronize_session=False)

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
