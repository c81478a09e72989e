"""What the servicevm commands share: output formatting, KEY=VALUE and
file options, and ``--wait`` (watching operations until they rest)."""

import json
import sys
import time

from cliff import columns
from osc_lib import exceptions
import yaml

from servicevmclient import client as svm_client

# Operation states (as the API names them).
COMPLETED = 'COMPLETED'
ROLLED_BACK = 'ROLLED_BACK'
CANCELLED = 'CANCELLED'
FAILED = 'FAILED'
FAILED_TEMP = 'FAILED_TEMP'
# The states an operation rests in: --wait stops at these.
RESTING_STATES = (COMPLETED, ROLLED_BACK, CANCELLED, FAILED, FAILED_TEMP)
ON_FAILURE_CHOICES = ('fail_temp', 'rollback')

# --wait polls after FIRST_POLL seconds, then less and less often, up to
# every MAX_POLL seconds (tests set them to 0).
FIRST_POLL = 0.2
MAX_POLL = 2.0


def sleep(seconds):
    time.sleep(seconds)


def clock():
    return time.monotonic()


# ---- output ------------------------------------------------------------

class JsonColumn(columns.FormattableColumn):
    """A mapping or list: JSON for people (a plain list of names joined
    with commas), the value itself for -f json/yaml."""

    def human_readable(self):
        value = self._value
        if value is None:
            return ''
        if isinstance(value, list) and all(
                isinstance(v, str) for v in value):
            return ', '.join(value)
        return json.dumps(value, sort_keys=True)

    def machine_readable(self):
        return self._value


class StepsColumn(columns.FormattableColumn):
    """An operation's steps: a line each for people, the list for -f
    json/yaml."""

    def human_readable(self):
        lines = []
        for number, step in enumerate(self._value or [], 1):
            line = '%d. %s %s' % (number, step.get('name'),
                                  step.get('state'))
            if step.get('attempts'):
                line += ' (attempts: %s)' % step['attempts']
            if step.get('output'):
                line += ': %s' % step['output']
            if step.get('error'):
                line += ' ERROR: %s' % step['error']
            lines.append(line)
        return '\n'.join(lines)

    def machine_readable(self):
        return self._value


def column(value):
    if isinstance(value, (dict, list)):
        return JsonColumn(value)
    return value


def show(item, first=('id', 'name'), extra=None):
    """(columns, data) of a resource for a ShowOne: ``first`` keys first,
    then the rest in alphabetical order, then ``extra`` (a mapping).
    Secrets are masked (the API masks them already)."""
    item = svm_client.mask(dict(item or {}))
    item.update(extra or {})
    keys = [k for k in first if k in item]
    keys += sorted(k for k in item if k not in keys)
    data = tuple(StepsColumn(item[k]) if k == 'steps' else column(item[k])
                 for k in keys)
    return tuple(keys), data


def listing(items, columns_, long_columns=(), long=False):
    """(headers, rows) for a Lister: ``columns_`` and, with ``long``,
    ``long_columns``: sequences of (header, key)."""
    chosen = list(columns_) + (list(long_columns) if long else [])
    headers = tuple(header for header, _ in chosen)
    rows = (tuple(column(item.get(key)) for _, key in chosen)
            for item in items)
    return headers, rows


def add_list_options(parser, sort_keys):
    parser.add_argument(
        '--limit', metavar='<count>', type=int,
        help='Show at most this many (one page; default: all of them)')
    parser.add_argument(
        '--marker', metavar='<id>',
        help='Start after this ID (the last one of the previous page)')
    parser.add_argument(
        '--sort', metavar='<key>[:asc|desc]',
        help='Sort by one of: %s' % ', '.join(sort_keys))
    parser.add_argument(
        '--long', action='store_true', default=False,
        help='Show more columns')


def list_params(parsed_args):
    params = {'marker': parsed_args.marker}
    if parsed_args.sort:
        key, _, direction = parsed_args.sort.partition(':')
        params['sort_key'] = key
        params['sort_dir'] = direction or None
    return params


# ---- input -------------------------------------------------------------

def parse_value(text):
    """A KEY=VALUE value: JSON when it parses as JSON (numbers, true,
    objects, lists, quoted strings), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_kv(pairs, option):
    """{KEY: VALUE} from repeated KEY=VALUE options."""
    result = {}
    for pair in pairs or ():
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise exceptions.CommandError(
                '%s takes KEY=VALUE, not %r' % (option, pair))
        result[key] = parse_value(value)
    return result


def read_file(path, what):
    """The text of a file, or a clear error."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise exceptions.CommandError('Cannot read the %s from %s: %s' % (
            what, path, getattr(e, 'strerror', None) or e)) from e


def read_mapping(path, what):
    """A JSON or YAML mapping read from a file."""
    text = read_file(path, what)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise exceptions.CommandError('The %s in %s is neither JSON nor '
                                      'YAML: %s' % (what, path, e)) from e
    if not isinstance(value, dict):
        raise exceptions.CommandError('The %s in %s must be a mapping.' % (
            what, path))
    return value


def merged_kwargs(current, changes, removed, replace, what):
    """A resource's new kwargs: its ``current`` ones with ``changes`` and
    without the ``removed`` keys, or ``changes`` only with ``replace``.
    Refuses to send back a secret the API showed as "***"."""
    result = {} if replace else dict(current or {})
    for key in removed or ():
        result.pop(key, None)
    result.update(changes)
    if _masked(result):
        raise exceptions.CommandError(
            'The %s kwargs hold secrets, which the API shows as "***" and '
            'cannot be sent back: give all of them again with '
            '--replace-kwargs (and --kwargs-file).' % what)
    return result


def _masked(value):
    if isinstance(value, dict):
        return any(v == svm_client.MASK and k in svm_client.SECRET_NAMES
                   or _masked(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_masked(v) for v in value)
    return False


def add_kwargs_options(parser, name='kwargs', option='--kwarg',
                       for_set=False):
    parser.add_argument(
        option, metavar='<key=value>', action='append', default=[],
        dest=name.replace('-', '_'),
        help='A key of the %s (repeat for more); the value is JSON when '
             'it parses as JSON, else a string' % name.replace('-', ' '))
    parser.add_argument(
        '--%s-file' % name, metavar='<file>',
        dest='%s_file' % name.replace('-', '_'),
        help='The %s as a JSON or YAML mapping (%s options add to it)' % (
            name.replace('-', ' '), option))
    if for_set:
        parser.add_argument(
            '--remove-kwarg', metavar='<key>', action='append', default=[],
            dest='remove_kwargs', help='Remove this key of the kwargs')
        parser.add_argument(
            '--replace-kwargs', action='store_true', default=False,
            help='Replace the kwargs with the given ones instead of '
                 'changing the given keys')


def kwargs_from(parsed_args, name='kwargs', option='--kwarg'):
    """The mapping given with --<name>-file and KEY=VALUE options, or
    None when neither was given."""
    attr = name.replace('-', '_')
    path = getattr(parsed_args, attr + '_file')
    pairs = getattr(parsed_args, attr)
    if not path and not pairs:
        return None
    result = read_mapping(path, name) if path else {}
    result.update(parse_kv(pairs, option))
    return result


def api_call(func, *args, **kwargs):
    """Call the client; its errors become CommandErrors (exit 1, the
    API's detail on stderr)."""
    try:
        return func(*args, **kwargs)
    except svm_client.ClientError as e:
        raise exceptions.CommandError(str(e)) from e


# ---- --wait ------------------------------------------------------------

def add_wait_options(parser, what='until the operation completes'):
    parser.add_argument(
        '--wait', action='store_true', default=False,
        help='Wait %s, showing the current step and state on stderr; exit '
             'non-zero with the error if it fails' % what)
    parser.add_argument(
        '--wait-timeout', metavar='<seconds>', type=float, default=None,
        help='With --wait, give up (non-zero) after this many seconds '
             '(default: no limit)')


def current_step(operation):
    """The step an operation is at: running or rolling back, else the
    failed one, else the next to run, else the last one done."""
    steps = operation.get('steps') or []
    for step in steps:
        if step.get('state') in ('RUNNING', 'ROLLING_BACK'):
            return step
    failed = [s for s in steps if s.get('state') == 'FAILED']
    if failed:
        return failed[-1]
    if operation.get('state') == 'PROCESSING':
        for step in steps:
            if step.get('state') == 'PENDING':
                return step
    done = [s for s in steps if s.get('state') != 'PENDING']
    if operation.get('state') in ('ROLLING_BACK', ROLLED_BACK, CANCELLED):
        undone = [s for s in done if s.get('state') == 'ROLLED_BACK']
        return undone[0] if undone else None
    return done[-1] if done else None


def progress(operation):
    """One line: the operation's state and the step it is at."""
    line = 'Operation %s (%s of %s %s): %s' % (
        operation.get('id'), operation.get('kind'),
        operation.get('resource_type'), operation.get('resource_id'),
        operation.get('state'))
    step = current_step(operation)
    if step:
        line += ', step %s %s' % (step.get('name'), step.get('state'))
    return line


def failure(operation):
    """What a failed operation says, and what can be done about it."""
    lines = ['Operation %s (%s of %s %s) ended %s: %s' % (
        operation.get('id'), operation.get('kind'),
        operation.get('resource_type'), operation.get('resource_id'),
        operation.get('state'), operation.get('error') or 'no error given')]
    for step in operation.get('steps') or []:
        if step.get('error') and step.get('error') != operation.get('error'):
            lines.append('  step %s %s: %s' % (
                step.get('name'), step.get('state'), step['error']))
    if operation.get('state') == FAILED_TEMP:
        lines.append('It waits: fix the cause, then "openstack servicevm '
                     'operation retry %s" (or rollback, cancel, fail).'
                     % operation.get('id'))
    return '\n'.join(lines)


def wait_for_operation(svm, operation_id, stream=None, timeout=None,
                       expect=(COMPLETED,)):
    """Poll an operation until it rests, writing a progress line to
    ``stream`` whenever its state or step changes. Returns it when it
    ends in one of ``expect``; raises CommandError with its error when
    it ends otherwise (or after ``timeout`` seconds)."""
    stream = stream or sys.stderr
    deadline = None if timeout is None else clock() + timeout
    delay = FIRST_POLL
    last = None
    while True:
        operation = api_call(svm.get_operation, operation_id)
        line = progress(operation)
        if line != last:
            stream.write(line + '\n')
            stream.flush()
            last = line
        state = operation.get('state')
        if state in expect:
            return operation
        if state in RESTING_STATES:
            raise exceptions.CommandError(failure(operation))
        if deadline is not None and clock() >= deadline:
            raise exceptions.CommandError(
                'Gave up waiting after %s s: operation %s is %s (see '
                '"openstack servicevm operation show %s").' % (
                    timeout, operation_id, state, operation_id))
        sleep(delay)
        delay = min(delay * 1.5, MAX_POLL) or MAX_POLL


def wait_for_operations(svm, operation_ids, stream=None, timeout=None):
    """Wait for each operation in turn (all must complete)."""
    deadline = None if timeout is None else clock() + timeout
    done = []
    for operation_id in operation_ids:
        left = None if deadline is None else max(deadline - clock(), 0)
        done.append(wait_for_operation(svm, operation_id, stream, left))
    return done


def wait_until_gone(get, resource_id, what, timeout=None):
    """Poll ``get(resource_id)`` until the API answers 404; fail when
    the resource shows ERROR instead."""
    deadline = None if timeout is None else clock() + timeout
    delay = FIRST_POLL
    while True:
        try:
            resource = get(resource_id)
        except svm_client.NotFound:
            return
        except svm_client.ClientError as e:
            raise exceptions.CommandError(str(e)) from e
        if resource.get('status') == 'ERROR':
            raise exceptions.CommandError('%s %s is ERROR: %s' % (
                what.capitalize(), resource_id,
                resource.get('status_reason') or 'no reason given'))
        if deadline is not None and clock() >= deadline:
            raise exceptions.CommandError(
                'Gave up waiting after %s s for %s %s to be gone.' % (
                    timeout, what, resource_id))
        sleep(delay)
        delay = min(delay * 1.5, MAX_POLL) or MAX_POLL


def stderr(app):
    return getattr(app, 'stderr', None) or sys.stderr
