"""SQLAlchemy models of servicevm.

Names follow the servicevm blueprint: device templates with their
attributes and service types, devices with their kwargs and service
contexts, service instances with theirs, the bindings between service
instances and devices, and the operations, steps and events that record
the life of every resource. Every table carries ``project_id``,
``created_at`` and ``updated_at``.
"""

from oslo_db.sqlalchemy import models
from oslo_serialization import jsonutils
import sqlalchemy as sa
from sqlalchemy import orm

from servicevm.common import secrets


class JSONEncoded(sa.types.TypeDecorator):
    """A JSON value stored as text (portable across SQLite, PostgreSQL and
    MySQL)."""
    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else jsonutils.dumps(value)

    def process_result_value(self, value, dialect):
        return None if value is None else jsonutils.loads(value)


class Base(orm.DeclarativeBase, models.ModelBase, models.TimestampMixin):
    pass


def _iso(value):
    return value.isoformat() if value is not None else None


def _timestamps(row):
    return {'created_at': _iso(row.created_at),
            'updated_at': _iso(row.updated_at)}


def _kv(rows, reveal=False):
    """The pairs as a dict: secrets masked ("***"), or unsealed with
    ``reveal`` (for the conductor's drivers only)."""
    if reveal:
        return {r.key: secrets.reveal(r.value) for r in rows}
    return {r.key: secrets.mask(r.value, key=r.key) for r in rows}


def _uuid():
    return sa.Column(sa.String(36), primary_key=True)


def _project():
    return sa.Column(sa.String(255), nullable=False, index=True)


class DeviceTemplate(Base):
    __tablename__ = 'device_templates'
    __table_args__ = (
        sa.Index('ix_device_templates_project_created', 'project_id',
                 'created_at'),
    )

    id = _uuid()
    project_id = _project()
    name = sa.Column(sa.String(255), nullable=False, default='')
    description = sa.Column(sa.String(1024), nullable=False, default='')
    device_driver = sa.Column(sa.String(255), nullable=False)
    mgmt_driver = sa.Column(sa.String(255), nullable=False)
    # {event: [{"name": ..., "script": ...}, ...]}
    lifecycle_events = sa.Column(JSONEncoded, nullable=True)

    attributes = orm.relationship(
        'DeviceTemplateAttribute', cascade='all, delete-orphan',
        lazy='selectin', order_by='DeviceTemplateAttribute.key')
    service_types = orm.relationship(
        'ServiceType', cascade='all, delete-orphan', lazy='selectin',
        order_by='ServiceType.id')

    def as_dict(self, reveal=False):
        return dict(
            id=self.id, project_id=self.project_id, name=self.name,
            description=self.description, device_driver=self.device_driver,
            mgmt_driver=self.mgmt_driver,
            attributes=_kv(self.attributes, reveal),
            service_types=[t.service_type for t in self.service_types],
            lifecycle_events=self.lifecycle_events or {},
            **_timestamps(self))


class DeviceTemplateAttribute(Base):
    """One (key, value) pair a device driver needs to build a device,
    e.g. image and flavor for Nova; the value is any JSON value."""
    __tablename__ = 'device_template_attributes'
    __table_args__ = (
        sa.UniqueConstraint('template_id', 'key',
                            name='uniq_device_template_attributes0key'),
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    project_id = _project()
    template_id = sa.Column(
        sa.String(36),
        sa.ForeignKey('device_templates.id', ondelete='CASCADE'),
        nullable=False)
    key = sa.Column(sa.String(255), nullable=False)
    value = sa.Column(JSONEncoded, nullable=True)


class ServiceType(Base):
    """A service type (router, firewall, ...) devices of a template host."""
    __tablename__ = 'service_types'
    __table_args__ = (
        sa.UniqueConstraint('template_id', 'service_type',
                            name='uniq_service_types0template_type'),
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    project_id = _project()
    template_id = sa.Column(
        sa.String(36),
        sa.ForeignKey('device_templates.id', ondelete='CASCADE'),
        nullable=False)
    service_type = sa.Column(sa.String(255), nullable=False)


class Device(Base):
    """A device (VM or other container) that hosts services."""
    __tablename__ = 'devices'
    __table_args__ = (
        sa.Index('ix_devices_project_created', 'project_id', 'created_at'),
        sa.Index('ix_devices_template_id', 'template_id'),
    )

    id = _uuid()
    project_id = _project()
    user_id = sa.Column(sa.String(255), nullable=True)
    name = sa.Column(sa.String(255), nullable=False, default='')
    description = sa.Column(sa.String(1024), nullable=False, default='')
    template_id = sa.Column(sa.String(36),
                            sa.ForeignKey('device_templates.id'),
                            nullable=False)
    # What identifies the device in its VIM (a Nova server's UUID, a Heat
    # stack's id...).
    instance_id = sa.Column(sa.String(255), nullable=True)
    # Opaque to servicevm; the management driver interprets it.
    mgmt_address = sa.Column(sa.String(255), nullable=True)
    # The configuration the device reported after its last change
    # (NETCONF get-config of running).
    mgmt_config = sa.Column(sa.Text, nullable=True)
    # The last poll of the health watch: when the VIM last showed the
    # device, and its usage counters then.
    last_seen = sa.Column(sa.DateTime, nullable=True)
    usage = sa.Column(JSONEncoded, nullable=True)
    # The liveness monitor's last result (state, failures, when, detail),
    # written when it changes.
    monitor = sa.Column(JSONEncoded, nullable=True)
    status = sa.Column(sa.String(32), nullable=False)
    status_reason = sa.Column(sa.Text, nullable=True)
    power_state = sa.Column(sa.String(32), nullable=False,
                            default='unknown')
    ready = sa.Column(sa.Boolean, nullable=False, default=False)
    # The operation that holds the device (one at a time), if any.
    operation_id = sa.Column(sa.String(36), nullable=True)
    # The Keystone trust from the device's user to servicevm, through
    # which its drivers act in the user's project (never shown by the API).
    trust_id = sa.Column(sa.String(64), nullable=True)

    kwargs = orm.relationship(
        'DeviceArg', cascade='all, delete-orphan', lazy='selectin',
        order_by='DeviceArg.key')
    service_contexts = orm.relationship(
        'DeviceServiceContext', cascade='all, delete-orphan',
        lazy='selectin', order_by='DeviceServiceContext.id')
    bindings = orm.relationship(
        'ServiceDeviceBinding', lazy='selectin', viewonly=True,
        order_by='ServiceDeviceBinding.created_at, '
                 'ServiceDeviceBinding.service_instance_id')

    def as_dict(self, reveal=False):
        return dict(
            id=self.id, project_id=self.project_id, user_id=self.user_id,
            name=self.name, description=self.description,
            template_id=self.template_id, instance_id=self.instance_id,
            mgmt_address=self.mgmt_address, mgmt_config=self.mgmt_config,
            last_seen=_iso(self.last_seen), status=self.status,
            status_reason=self.status_reason, power_state=self.power_state,
            ready=self.ready, operation_id=self.operation_id,
            kwargs=_kv(self.kwargs, reveal),
            service_contexts=[c.as_dict() for c in self.service_contexts],
            services=[b.service_instance_id for b in self.bindings],
            **_timestamps(self))


class DeviceArg(Base):
    """One (key, value) pair of a device's kwargs (JSON value)."""
    __tablename__ = 'device_kwargs'
    __table_args__ = (
        sa.UniqueConstraint('device_id', 'key',
                            name='uniq_device_kwargs0key'),
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    project_id = _project()
    device_id = sa.Column(sa.String(36),
                          sa.ForeignKey('devices.id', ondelete='CASCADE'),
                          nullable=False)
    key = sa.Column(sa.String(255), nullable=False)
    value = sa.Column(JSONEncoded, nullable=True)


class _ContextMixin:
    network_id = sa.Column(sa.String(36), nullable=True)
    subnet_id = sa.Column(sa.String(36), nullable=True)
    port_id = sa.Column(sa.String(36), nullable=True)
    router_id = sa.Column(sa.String(36), nullable=True)
    role = sa.Column(sa.String(255), nullable=True)
    # Tells apart contexts of the same role ("index" is reserved in SQL).
    index = sa.Column('role_index', sa.Integer, nullable=True)

    def as_dict(self):
        return {'network_id': self.network_id, 'subnet_id': self.subnet_id,
                'port_id': self.port_id, 'router_id': self.router_id,
                'role': self.role, 'index': self.index}


class DeviceServiceContext(_ContextMixin, Base):
    """Where a device sits: a network, subnet, port or router, by role."""
    __tablename__ = 'device_service_contexts'

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    project_id = _project()
    device_id = sa.Column(sa.String(36),
                          sa.ForeignKey('devices.id', ondelete='CASCADE'),
                          nullable=False, index=True)


class ServiceInstance(Base):
    """A logical service (a router, a firewall) bound to devices."""
    __tablename__ = 'service_instances'
    __table_args__ = (
        sa.Index('ix_service_instances_project_created', 'project_id',
                 'created_at'),
    )

    id = _uuid()
    project_id = _project()
    user_id = sa.Column(sa.String(255), nullable=True)
    name = sa.Column(sa.String(255), nullable=False, default='')
    description = sa.Column(sa.String(1024), nullable=False, default='')
    service_type = sa.Column(sa.String(255), nullable=False)
    # Points at a row of a service-specific table, if any (opaque).
    service_table_id = sa.Column(sa.String(255), nullable=True)
    # True: the user configures it through this API; False: another
    # service (e.g. a load balancer service) owns it.
    managed_by_user = sa.Column(sa.Boolean, nullable=False, default=False)
    mgmt_driver = sa.Column(sa.String(255), nullable=False)
    mgmt_address = sa.Column(sa.String(255), nullable=True)
    status = sa.Column(sa.String(32), nullable=False)
    status_reason = sa.Column(sa.Text, nullable=True)

    kwargs = orm.relationship(
        'ServiceInstanceArg', cascade='all, delete-orphan',
        lazy='selectin', order_by='ServiceInstanceArg.key')
    service_contexts = orm.relationship(
        'ServiceContext', cascade='all, delete-orphan', lazy='selectin',
        order_by='ServiceContext.id')
    bindings = orm.relationship(
        'ServiceDeviceBinding', cascade='all, delete-orphan',
        lazy='selectin', order_by='ServiceDeviceBinding.position')

    def as_dict(self, reveal=False):
        return dict(
            id=self.id, project_id=self.project_id, user_id=self.user_id,
            name=self.name, description=self.description,
            service_type=self.service_type,
            service_table_id=self.service_table_id,
            managed_by_user=self.managed_by_user,
            mgmt_driver=self.mgmt_driver, mgmt_address=self.mgmt_address,
            status=self.status, status_reason=self.status_reason,
            kwargs=_kv(self.kwargs, reveal),
            service_contexts=[c.as_dict() for c in self.service_contexts],
            devices=[b.device_id for b in self.bindings],
            bindings=[b.as_dict() for b in self.bindings],
            **_timestamps(self))


class ServiceInstanceArg(Base):
    __tablename__ = 'service_instance_kwargs'
    __table_args__ = (
        sa.UniqueConstraint('service_instance_id', 'key',
                            name='uniq_service_instance_kwargs0key'),
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    project_id = _project()
    service_instance_id = sa.Column(
        sa.String(36),
        sa.ForeignKey('service_instances.id', ondelete='CASCADE'),
        nullable=False)
    key = sa.Column(sa.String(255), nullable=False)
    value = sa.Column(JSONEncoded, nullable=True)


class ServiceContext(_ContextMixin, Base):
    """Where a service instance sits (a subset of its devices')."""
    __tablename__ = 'service_contexts'

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    project_id = _project()
    service_instance_id = sa.Column(
        sa.String(36),
        sa.ForeignKey('service_instances.id', ondelete='CASCADE'),
        nullable=False, index=True)


class ServiceDeviceBinding(Base):
    """A service instance hosted by a device (a device may host many)."""
    __tablename__ = 'service_device_bindings'

    service_instance_id = sa.Column(
        sa.String(36),
        sa.ForeignKey('service_instances.id', ondelete='CASCADE'),
        primary_key=True)
    device_id = sa.Column(sa.String(36), sa.ForeignKey('devices.id'),
                          primary_key=True, index=True)
    project_id = _project()
    position = sa.Column(sa.Integer, nullable=False, default=0)
    # Whether the device is configured for the service (states.BINDING_*).
    status = sa.Column(sa.String(32), nullable=False, default='ACTIVE',
                       server_default='ACTIVE')
    # The service instance owns the device (created it, or took it over by
    # a cascading delete): releasing the service deletes the device.
    owner = sa.Column(sa.Boolean, nullable=False, default=False,
                      server_default=sa.false())

    def as_dict(self):
        return {'device_id': self.device_id, 'status': self.status,
                'owner': self.owner}


class Operation(Base):
    """One lifecycle request on a resource, made durable."""
    __tablename__ = 'operations'
    __table_args__ = (
        sa.Index('ix_operations_resource', 'resource_id', 'created_at'),
        sa.Index('ix_operations_project_created', 'project_id',
                 'created_at'),
        sa.Index('ix_operations_state', 'state'),
    )

    id = _uuid()
    project_id = _project()
    user_id = sa.Column(sa.String(255), nullable=True)
    request_id = sa.Column(sa.String(255), nullable=True)
    resource_type = sa.Column(sa.String(64), nullable=False)
    resource_id = sa.Column(sa.String(36), nullable=False)
    kind = sa.Column(sa.String(64), nullable=False)
    state = sa.Column(sa.String(32), nullable=False)
    on_failure = sa.Column(sa.String(32), nullable=False,
                           default='fail_temp')
    # Set by cancel: the rollback that follows ends in CANCELLED.
    cancelled = sa.Column(sa.Boolean, nullable=False, default=False,
                          server_default=sa.false())
    # The resource's status before the operation (rollback restores it).
    previous_status = sa.Column(sa.String(32), nullable=True)
    params = sa.Column(JSONEncoded, nullable=True)
    error = sa.Column(sa.Text, nullable=True)
    # Which conductor runs it, and until when its claim holds.
    lease_owner = sa.Column(sa.String(255), nullable=True)
    lease_expires_at = sa.Column(sa.DateTime, nullable=True)
    started_at = sa.Column(sa.DateTime, nullable=True)
    finished_at = sa.Column(sa.DateTime, nullable=True)

    steps = orm.relationship(
        'OperationStep', cascade='all, delete-orphan', lazy='selectin',
        order_by='OperationStep.seq')

    def as_dict(self, with_steps=True):
        result = dict(
            id=self.id, project_id=self.project_id, user_id=self.user_id,
            request_id=self.request_id, resource_type=self.resource_type,
            resource_id=self.resource_id, kind=self.kind, state=self.state,
            on_failure=self.on_failure, cancelled=self.cancelled,
            error=self.error, lease_owner=self.lease_owner,
            started_at=_iso(self.started_at),
            finished_at=_iso(self.finished_at), **_timestamps(self))
        if with_steps:
            result['steps'] = [s.as_dict() for s in self.steps]
        return result


class OperationStep(Base):
    """One unit step of an operation."""
    __tablename__ = 'operation_steps'
    __table_args__ = (
        sa.UniqueConstraint('operation_id', 'seq',
                            name='uniq_operation_steps0seq'),
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    project_id = _project()
    operation_id = sa.Column(
        sa.String(36), sa.ForeignKey('operations.id', ondelete='CASCADE'),
        nullable=False)
    seq = sa.Column(sa.Integer, nullable=False)
    name = sa.Column(sa.String(255), nullable=False)
    state = sa.Column(sa.String(32), nullable=False)
    depends_on = sa.Column(JSONEncoded, nullable=True)
    # False for a step whose effect cannot be undone (a deleted VM).
    reversible = sa.Column(sa.Boolean, nullable=False, default=True,
                           server_default=sa.true())
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    output = sa.Column(sa.Text, nullable=True)
    error = sa.Column(sa.Text, nullable=True)
    started_at = sa.Column(sa.DateTime, nullable=True)
    finished_at = sa.Column(sa.DateTime, nullable=True)

    def as_dict(self):
        return dict(seq=self.seq, name=self.name, state=self.state,
                    depends_on=self.depends_on or [],
                    reversible=self.reversible, attempts=self.attempts,
                    output=self.output, error=self.error,
                    started_at=_iso(self.started_at),
                    finished_at=_iso(self.finished_at))


class Conductor(Base):
    """A live conductor (its health watch renews ``seen_at``)."""
    __tablename__ = 'conductors'

    host = sa.Column(sa.String(255), primary_key=True)
    seen_at = sa.Column(sa.DateTime, nullable=False)
    # [[driver, call, result, count], ...]: the VIM calls it made since it
    # started (a Prometheus counter per conductor).
    vim_calls = sa.Column(JSONEncoded, nullable=True)


class Event(Base):
    """One line of a resource's history."""
    __tablename__ = 'events'
    __table_args__ = (
        sa.Index('ix_events_resource', 'resource_id', 'id'),
        sa.Index('ix_events_result', 'result', 'id'),
    )

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    project_id = _project()
    resource_type = sa.Column(sa.String(64), nullable=False)
    resource_id = sa.Column(sa.String(36), nullable=False)
    operation_id = sa.Column(sa.String(36), nullable=True)
    event_type = sa.Column(sa.String(255), nullable=False)
    result = sa.Column(sa.String(32), nullable=False)
    message = sa.Column(sa.Text, nullable=True)
    details = sa.Column(JSONEncoded, nullable=True)
    user_id = sa.Column(sa.String(255), nullable=True)
    request_id = sa.Column(sa.String(255), nullable=True)
    # Alarms (result 'alarm'): who acknowledged one, and when.
    acknowledged_at = sa.Column(sa.DateTime, nullable=True)
    acknowledged_by = sa.Column(sa.String(255), nullable=True)

    def as_alarm(self):
        return dict(self.as_dict(),
                    acknowledged=self.acknowledged_at is not None,
                    acknowledged_at=_iso(self.acknowledged_at),
                    acknowledged_by=self.acknowledged_by)

    def as_dict(self):
        return dict(id=self.id, project_id=self.project_id,
                    resource_type=self.resource_type,
                    resource_id=self.resource_id,
                    operation_id=self.operation_id,
                    event_type=self.event_type, result=self.result,
                    message=self.message, details=self.details,
                    user_id=self.user_id, request_id=self.request_id,
                    created_at=_iso(self.created_at))
