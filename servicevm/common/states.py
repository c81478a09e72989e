"""Resource and operation states, and the legal transitions between them.

The tables here are the single place transitions are written; the database
layer applies them as compare-and-swap updates.
"""

PENDING_CREATE = 'PENDING_CREATE'
PENDING_UPDATE = 'PENDING_UPDATE'
PENDING_DELETE = 'PENDING_DELETE'
PENDING_HEAL = 'PENDING_HEAL'
ACTIVE = 'ACTIVE'
ERROR = 'ERROR'
DEAD = 'DEAD'
DELETED = 'DELETED'

DEVICE_STATES = (PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE,
                 PENDING_HEAL, ACTIVE, ERROR, DEAD)
PENDING_STATES = (PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE,
                  PENDING_HEAL)

# What a device's status may become when a lifecycle request starts:
# action -> (states it may start from, the pending state it moves to).
DEVICE_ACTIONS = {
    'update': ((ACTIVE,), PENDING_UPDATE),
    'delete': ((ACTIVE, ERROR, DEAD), PENDING_DELETE),
    'heal': ((DEAD, ERROR), PENDING_HEAL),
    # A driver action (reboot, resize, scale...): the device is busy as
    # during an update, as in Octavia.
    'action': ((ACTIVE, ERROR), PENDING_UPDATE),
    # Binding a service instance to the device, taking one off it, or
    # applying theirs again (the device's management driver and its
    # CONFIGURE scripts).
    'configure': ((ACTIVE, ERROR), PENDING_UPDATE),
}

# What a pending state resolves to: pending -> (on success, on failure).
# None means the resource row is removed.
DEVICE_RESOLUTION = {
    PENDING_CREATE: (ACTIVE, ERROR),
    PENDING_UPDATE: (ACTIVE, ERROR),
    PENDING_DELETE: (None, ERROR),
    PENDING_HEAL: (ACTIVE, ERROR),
}

SERVICE_INSTANCE_STATES = (ACTIVE, ERROR, PENDING_CREATE, PENDING_DELETE)

# A service instance's binding to one device: PENDING until the device is
# configured for it, ACTIVE once it is, ERROR when that failed, REMOVING
# while its configuration is taken off the device (staged delete).
BINDING_PENDING = 'PENDING'
BINDING_REMOVING = 'REMOVING'
BINDING_STATES = (BINDING_PENDING, ACTIVE, ERROR, BINDING_REMOVING)

# Observed power states (kept apart from the lifecycle status).
POWER_RUNNING = 'running'
POWER_SHUTOFF = 'shutoff'
POWER_PAUSED = 'paused'
POWER_UNKNOWN = 'unknown'
POWER_STATES = (POWER_RUNNING, POWER_SHUTOFF, POWER_PAUSED, POWER_UNKNOWN)

# Operations.
OP_PROCESSING = 'PROCESSING'
OP_PAUSED = 'PAUSED'
OP_FAILED_TEMP = 'FAILED_TEMP'
OP_ROLLING_BACK = 'ROLLING_BACK'
OP_ROLLED_BACK = 'ROLLED_BACK'
OP_FAILED = 'FAILED'
OP_CANCELLED = 'CANCELLED'
OP_COMPLETED = 'COMPLETED'
OPERATION_STATES = (OP_PROCESSING, OP_PAUSED, OP_FAILED_TEMP,
                    OP_ROLLING_BACK, OP_ROLLED_BACK, OP_FAILED,
                    OP_CANCELLED, OP_COMPLETED)
OPERATION_FINAL_STATES = (OP_ROLLED_BACK, OP_FAILED, OP_CANCELLED,
                          OP_COMPLETED)

# Steps.
STEP_PENDING = 'PENDING'
STEP_RUNNING = 'RUNNING'
STEP_COMPLETED = 'COMPLETED'
STEP_FAILED = 'FAILED'
STEP_ROLLING_BACK = 'ROLLING_BACK'
STEP_ROLLED_BACK = 'ROLLED_BACK'
STEP_STATES = (STEP_PENDING, STEP_RUNNING, STEP_COMPLETED, STEP_FAILED,
               STEP_ROLLING_BACK, STEP_ROLLED_BACK)
# Steps that may have changed something, and so are undone by a rollback.
STEP_UNDO_STATES = (STEP_RUNNING, STEP_COMPLETED, STEP_FAILED,
                    STEP_ROLLING_BACK)

OPERATION_KINDS = ('create', 'update', 'delete', 'action', 'configure',
                   'heal')

# The device status while an operation of each kind works on it.
KIND_PENDING = {'create': PENDING_CREATE, 'update': PENDING_UPDATE,
                'delete': PENDING_DELETE, 'heal': PENDING_HEAL,
                'action': PENDING_UPDATE, 'configure': PENDING_UPDATE}

# What a user may do to an operation: action -> (states it may be
# applied in, state it moves to).
OPERATION_ACTIONS = {
    'pause': ((OP_PROCESSING,), OP_PAUSED),
    'resume': ((OP_PAUSED,), OP_PROCESSING),
    'retry': ((OP_FAILED_TEMP,), OP_PROCESSING),
    'rollback': ((OP_PROCESSING, OP_PAUSED, OP_FAILED_TEMP),
                 OP_ROLLING_BACK),
    'cancel': ((OP_PROCESSING, OP_PAUSED, OP_FAILED_TEMP), OP_ROLLING_BACK),
    'fail': ((OP_PAUSED, OP_FAILED_TEMP), OP_FAILED),
}
# States in which a conductor works on an operation.
OPERATION_RUNNING_STATES = (OP_PROCESSING, OP_ROLLING_BACK)

ON_FAILURE_POLICIES = ('fail_temp', 'rollback')
