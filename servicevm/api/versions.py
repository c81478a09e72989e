"""API versions and the OpenStack-API-Version header."""

from servicevm.common import exceptions

SERVICE_TYPE = 'servicevm'
HEADER = 'OpenStack-API-Version'
MIN_VERSION = (1, 0)
MAX_VERSION = (1, 0)


def fmt(version):
    return '%d.%d' % version


def parse_header(value):
    """The version asked for by an OpenStack-API-Version header value
    (``servicevm 1.0``, ``servicevm latest``); None when the header names
    other services only."""
    for item in value.split(','):
        parts = item.strip().split()
        if len(parts) != 2 or parts[0].lower() != SERVICE_TYPE:
            continue
        wanted = parts[1].lower()
        if wanted == 'latest':
            return MAX_VERSION
        try:
            major, minor = (int(p) for p in wanted.split('.'))
        except ValueError:
            raise exceptions.InvalidParameter(
                reason='%s must be "servicevm <major>.<minor>" or '
                       '"servicevm latest", not %r.' % (HEADER, item.strip()),
                field=HEADER)
        if not MIN_VERSION <= (major, minor) <= MAX_VERSION:
            raise exceptions.NotAcceptable(
                reason='API version %d.%d is not supported; this server '
                       'supports %s to %s.' % (major, minor,
                                               fmt(MIN_VERSION),
                                               fmt(MAX_VERSION)),
                field=HEADER)
        return major, minor
    return None
