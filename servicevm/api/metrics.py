"""Prometheus metrics of the whole deployment, read from the database at
each scrape (GET /metrics, when ``[api] metrics_enabled``)."""

from prometheus_client import core
from prometheus_client import exposition

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST


class _Snapshot:
    """A prometheus_client collector over one database snapshot."""

    def __init__(self, snapshot):
        self.snapshot = snapshot

    def collect(self):
        snap = self.snapshot
        devices = core.GaugeMetricFamily(
            'servicevm_devices', 'Devices per status.', labels=['status'])
        for status, count in sorted(snap['devices'].items()):
            devices.add_metric([status], count)
        yield devices
        services = core.GaugeMetricFamily(
            'servicevm_service_instances', 'Service instances per status.',
            labels=['status'])
        for status, count in sorted(snap['service_instances'].items()):
            services.add_metric([status], count)
        yield services
        operations = core.GaugeMetricFamily(
            'servicevm_operations', 'Operations per kind and state.',
            labels=['kind', 'state'])
        for (kind, state), count in sorted(snap['operations'].items()):
            operations.add_metric([kind, state], count)
        yield operations
        steps = core.SummaryMetricFamily(
            'servicevm_step_duration_seconds',
            'Time completed steps took, per step (scripts as script.EVENT).',
            labels=['step'])
        for step, (count, total) in sorted(snap['steps'].items()):
            steps.add_metric([step], count_value=count, sum_value=total)
        yield steps
        alarms = core.GaugeMetricFamily(
            'servicevm_alarms', 'Alarms, acknowledged or not.',
            labels=['acknowledged'])
        for acknowledged, count in sorted(snap['alarms'].items()):
            alarms.add_metric(['true' if acknowledged else 'false'], count)
        yield alarms
        power = core.GaugeMetricFamily(
            'servicevm_device_power_state',
            'Each device\'s last known power state (1 for the state it is '
            'in).', labels=['device_id', 'project_id', 'power_state'])
        for device_id, project_id, state in snap['power']:
            power.add_metric([device_id, project_id, state], 1)
        yield power
        usage = core.GaugeMetricFamily(
            'servicevm_device_usage',
            'Each device\'s usage counters at its last poll, as its VIM '
            'reports them (CPU, memory, network and disk).',
            labels=['device_id', 'project_id', 'counter'])
        for device_id, project_id, counters in snap.get('usage', ()):
            for name, value in sorted((counters or {}).items()):
                if isinstance(value, (int, float)) and not isinstance(
                        value, bool):
                    usage.add_metric([device_id, project_id, name], value)
        yield usage
        calls = core.CounterMetricFamily(
            'servicevm_vim_calls',
            'VIM calls each conductor made since it started, by driver, '
            'call and result (ok or error).',
            labels=['host', 'driver', 'call', 'result'])
        for host, counts in snap.get('vim_calls', ()):
            for driver, call, result, count in counts or ():
                calls.add_metric([host, driver, call, result], count)
        yield calls


def render(snapshot):
    """The Prometheus text exposition of a metrics snapshot."""
    registry = core.CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snapshot))
    return exposition.generate_latest(registry)
