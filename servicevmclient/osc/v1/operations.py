"""openstack servicevm operation list|show|pause|resume|cancel|retry|
rollback|fail"""

from osc_lib.command import command

from servicevmclient.osc.v1 import common

SORT_KEYS = ('created_at', 'updated_at', 'id', 'state', 'kind')
COLUMNS = (('ID', 'id'), ('Resource Type', 'resource_type'),
           ('Resource ID', 'resource_id'), ('Kind', 'kind'),
           ('State', 'state'), ('Error', 'error'))
LONG_COLUMNS = (('Created At', 'created_at'), ('Started At', 'started_at'),
                ('Finished At', 'finished_at'), ('User', 'user_id'),
                ('Request ID', 'request_id'),
                ('Lease Owner', 'lease_owner'))


class ListOperations(command.Lister):
    """List operations (lifecycle requests), e.g. of one device."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--resource', metavar='<id>',
            help='Only those of this resource (device or service '
                 'instance ID)')
        parser.add_argument(
            '--device', metavar='<device>',
            help='Only those of this device (name or ID)')
        parser.add_argument(
            '--state', metavar='<state>',
            help='Only those in this state (PROCESSING, PAUSED, '
                 'FAILED_TEMP, ROLLING_BACK, COMPLETED, ROLLED_BACK, '
                 'FAILED, CANCELLED)')
        parser.add_argument(
            '--kind', metavar='<kind>',
            help='Only those of this kind (create, update, delete, action, '
                 'configure, heal)')
        common.add_list_options(parser, SORT_KEYS)
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        params = common.list_params(parsed_args)
        resource_id = parsed_args.resource
        if parsed_args.device:
            resource_id = svm.find_device(parsed_args.device)['id']
        operations = svm.list_operations(
            limit=parsed_args.limit, resource_id=resource_id,
            state=parsed_args.state and parsed_args.state.upper(),
            kind=parsed_args.kind, **params)
        return common.listing(operations, COLUMNS, LONG_COLUMNS,
                              parsed_args.long)


class ShowOperation(command.ShowOne):
    """Show an operation and its steps."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('operation', metavar='<operation>',
                            help='ID of the operation')
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        return common.show(svm.get_operation(parsed_args.operation),
                           first=('id', 'resource_type', 'resource_id',
                                  'kind', 'state', 'error'))


class OperationAction(command.ShowOne):
    """Base of the steering commands: ACTION, and with --wait the states
    that mean success (EXPECT)."""

    ACTION = None
    EXPECT = None

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('operation', metavar='<operation>',
                            help='ID of the operation')
        if self.EXPECT:
            common.add_wait_options(
                parser, 'until the operation ends %s' % ' or '.join(
                    self.EXPECT))
        return parser

    def take_action(self, parsed_args):
        svm = self.app.client_manager.servicevm
        operation = svm.operation_action(parsed_args.operation, self.ACTION)
        if self.EXPECT and parsed_args.wait:
            operation = common.wait_for_operation(
                svm, operation['id'], common.stderr(self.app),
                parsed_args.wait_timeout, expect=self.EXPECT)
        return common.show(operation, first=(
            'id', 'resource_type', 'resource_id', 'kind', 'state', 'error'))


class PauseOperation(OperationAction):
    """Pause a running operation after its current step (PAUSED)."""
    ACTION = 'pause'


class ResumeOperation(OperationAction):
    """Resume a paused operation."""
    ACTION = 'resume'
    EXPECT = (common.COMPLETED,)


class CancelOperation(OperationAction):
    """Cancel an operation: interrupt its step, then roll back
    (CANCELLED)."""
    ACTION = 'cancel'
    EXPECT = (common.CANCELLED,)


class RetryOperation(OperationAction):
    """Retry a failed operation (FAILED_TEMP) from its failed step."""
    ACTION = 'retry'
    EXPECT = (common.COMPLETED,)


class RollbackOperation(OperationAction):
    """Undo an operation's done steps in reverse order (ROLLED_BACK)."""
    ACTION = 'rollback'
    EXPECT = (common.ROLLED_BACK,)


class FailOperation(OperationAction):
    """Give up on a paused or failed operation (FAILED; the device goes
    to ERROR)."""
    ACTION = 'fail'
