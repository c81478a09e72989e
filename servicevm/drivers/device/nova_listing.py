"""What the Nova driver's polls know of a poll scope's servers: a full
list, kept up to date with Nova's lists of the servers changed since
(``changes-since``)."""

import datetime
import time

from oslo_utils import timeutils


class Listing:
    """A poll scope's servicevm servers: a full list, updated with the
    lists of the servers changed since."""

    # Nova stamps a change before it commits it: ask again for what
    # changed a little before the newest change seen. (Nova shows its
    # stamps to the second, rounded down, which widens the margin by up to
    # a second more.) Every server changed in that window comes again in
    # each list: during a burst of builds a wider margin made the lists,
    # and Nova's work for them, larger. A change it still misses shows at
    # the next full list.
    MARGIN = datetime.timedelta(seconds=2)

    def __init__(self, servers):
        self.servers = {s.id: s for s in servers}
        self.full_at = time.monotonic()
        self.newest = None
        self._note(servers)

    def _note(self, servers):
        for server in servers:
            stamp = getattr(server, 'updated', None)
            if stamp and (self.newest is None or stamp > self.newest):
                self.newest = stamp

    def merge(self, servers):
        for server in servers:
            self.servers[server.id] = server
        self._note(servers)

    def since(self):
        if not self.newest:
            return None
        try:
            newest = timeutils.parse_isotime(self.newest)
        except ValueError:
            return None
        return (timeutils.normalize_time(newest) - self.MARGIN).strftime(
            '%Y-%m-%dT%H:%M:%SZ')

    def forget(self, device_id):
        """Forget the device's servers; returns their ids."""
        ids = [s.id for s in self.of_device(device_id)]
        for server_id in ids:
            self.servers.pop(server_id, None)
        return ids

    def of_device(self, device_id):
        # (A copy first: a delete may forget servers meanwhile.)
        return [s for s in list(self.servers.values())
                if (s.metadata or {}).get('servicevm_device_id') ==
                device_id]
