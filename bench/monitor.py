#!/usr/bin/env python3
"""Benchmark of the health watch: 2,000 ACTIVE devices (noop driver)
watched by one conductor's health watch on PostgreSQL. Prints its
figures; it is not a test.

    .venv/bin/python bench/monitor.py [--devices 2000] [--passes 10]
                                      [--interval 10] [--monitor-cycles 3]

What it runs: a private PostgreSQL (tools/postgres.sh, the state dir and
port of bench/api.py's servers), a fresh database migrated with
``servicevm-db-manage upgrade``, --devices ACTIVE devices in 10 projects
written straight to it (as bench/api.py loads its devices), and, in this
process, a conductor's health watch (the code servicevm-conductor runs)
making --passes passes back to back, after one warm-up pass. Each pass is
what a conductor does every ``[conductor] sync_interval``: register as
alive, read the devices it watches, poll them through their driver's
batched ``sync``, record what it found.

Figures, per pass: wall time (target < 1 s); this process's CPU time, and
its share of one core at a --interval second cycle (target < 5 %);
PostgreSQL's CPU time (its backend processes); SQL statements (counted
by SQLAlchemy) and driver calls (the "VIM calls": one per driver and
cloud, whatever the number of devices). Exit status: 0 every target met,
1 a target missed, 2 the run failed.

Then (unless --monitor-cycles 0) the liveness monitor: every template
gets a ``ping`` monitor (interval --interval, timeout 1 s), every device
a management address of its own in 127.1.0.0/16 (loopback), and the
watch runs as the conductor runs it (a pass every --interval seconds,
the monitor's tick every 0.5 s) for one interval (which records each
device's first answer), then --monitor-cycles intervals, measured.
Figures: probes per second and per cycle, failed probes, and the CPU
share of one core the conductor spends on it, its own and its ``fping``
processes' (no target: the issue's targets are for the poll).
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def _load_api_bench():
    spec = importlib.util.spec_from_file_location(
        'servicevm_bench_api', os.path.join(BENCH_DIR, 'api.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


B = _load_api_bench()
REPO = B.REPO
DB_NAME = 'servicevm_bench_monitor'


def postgres_cpu():
    """CPU seconds of the PostgreSQL server and its backends."""
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/comm' % pid) as f:
                if f.read().strip() in ('postgres', 'postmaster'):
                    pids.append(int(pid))
        except OSError:
            continue
    return B.cpu_seconds(pids)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--devices', type=int, default=2000)
    p.add_argument('--passes', type=int, default=10)
    p.add_argument('--interval', type=float, default=10.0,
                   help='the cycle the CPU share is of (default 10 s)')
    p.add_argument('--monitor-cycles', type=int, default=3,
                   help='intervals to run the ping monitor for (0: skip)')
    p.add_argument('--keep-servers', action='store_true')
    args = p.parse_args(argv)
    env = dict(os.environ, **B.BENCH_SERVERS_ENV)
    postgres = os.path.join(REPO, 'tools', 'postgres.sh')
    started = subprocess.run(['bash', postgres, 'status'], env=env,
                             capture_output=True).returncode != 0
    if started:
        B.log('starting tools/postgres.sh')
        B.run(['bash', postgres, 'start'], 600, env=env, capture=False)
    admin_url = B.run(['bash', postgres, 'url'], 30, env=env).strip()
    url = B.db_url_for(admin_url, DB_NAME)
    tmp = tempfile.mkdtemp(prefix='servicevm-bench-monitor-')
    try:
        return run(args, admin_url, url, tmp)
    finally:
        B.recreate_database(admin_url, DB_NAME, drop_only=True)
        if started and not args.keep_servers:
            B.run(['bash', postgres, 'stop'], 180, env=env, check=False,
                  capture=False)
        B.remove_tmp(tmp, argparse.Namespace(keep_tmp=False))


def run(args, admin_url, url, tmp):
    B.recreate_database(admin_url, DB_NAME)
    conf_path = os.path.join(tmp, 'servicevm.conf')
    with open(conf_path, 'w') as f:
        f.write('[DEFAULT]\nhost = bench-monitor\ntransport_url = fake://\n'
                '[database]\nconnection = %s\n' % url)
    B.run([os.path.join(B.VENV_BIN, 'servicevm-db-manage'), '--config-file',
           conf_path, 'upgrade'], 300)
    data = B.Data(url)
    per_project = args.devices // 10
    data.load(10, per_project)
    data.dispose()

    sys.path.insert(0, REPO)
    from oslo_config import cfg
    import sqlalchemy as sa
    from servicevm.common import context as svm_context
    from servicevm.common import service
    from servicevm.conductor import engine
    from servicevm.conductor import health
    from servicevm.db.sqlalchemy import enginefacade as ef
    conf = cfg.CONF
    service.prepare_service(['--config-file', conf_path])
    runner = engine.OperationRunner(conf, conf.host)
    watch = health.HealthWatch(conf, runner)
    statements = [0]

    def count(*_args):
        statements[0] += 1
    sa.event.listen(ef.writer.get_engine(), 'before_cursor_execute', count)
    ctx = svm_context.get_admin_context()
    watch.sync(ctx)  # warm-up: templates cached, connections opened
    rows = []
    for _ in range(args.passes):
        statements[0] = 0
        polls = sum(watch.polls.values())
        pg0, cpu0, t0 = postgres_cpu(), time.process_time(), time.monotonic()
        watch.sync(ctx)
        wall = time.monotonic() - t0
        rows.append({'wall': wall, 'cpu': time.process_time() - cpu0,
                     'pg_cpu': postgres_cpu() - pg0,
                     'statements': statements[0],
                     'calls': sum(watch.polls.values()) - polls})
    watched = len(watch._seen)

    def med(key):
        return statistics.median(r[key] for r in rows)
    wall, cpu = med('wall'), med('cpu')
    share = 100 * cpu / args.interval
    print('servicevm health watch benchmark: %d ACTIVE devices (noop '
          'driver, 10 projects) watched by one conductor, PostgreSQL on '
          'loopback; %d passes after a warm-up' % (watched, args.passes))
    print('servicevm %s; machine: %d CPUs, load average %s'
          % (B.source_version(), os.cpu_count(), B.loadavg()))
    print()
    print('  %-50s %s' % ('devices watched (all of them: one conductor)',
                          watched))
    print('  %-50s %.3f s (max %.3f)' % ('pass wall time, median', wall,
                                         max(r['wall'] for r in rows)))
    print('  %-50s %.3f s' % ('conductor CPU per pass, median', cpu))
    print('  %-50s %.2f %%' % ('conductor CPU share at a %g s cycle'
                               % args.interval, share))
    print('  %-50s %.3f s' % ('PostgreSQL CPU per pass, median',
                              med('pg_cpu')))
    print('  %-50s %d' % ('SQL statements per pass', med('statements')))
    print('  %-50s %d' % ('driver (VIM) calls per pass', med('calls')))
    print()
    ok_wall, ok_share = wall < 1.0, share < 5.0
    print('targets:')
    print('  pass under 1 s for %d devices          %.3f s  %s'
          % (watched, wall, 'PASS' if ok_wall else 'MISS'))
    print('  under 5 %% of a core at a %g s cycle    %.2f %%  %s'
          % (args.interval, share, 'PASS' if ok_share else 'MISS'))
    if args.monitor_cycles:
        monitored(args, conf, url, engine, health, svm_context)
    return 0 if ok_wall and ok_share else 1


def monitored(args, conf, url, engine, health, svm_context):
    """The ping monitor of every device, for --monitor-cycles cycles."""
    import json
    import resource
    import sqlalchemy as sa
    db = sa.create_engine(url)
    with db.begin() as conn:
        monitor = json.dumps({'type': 'ping', 'interval': args.interval,
                              'timeout': 1, 'failures': 3})
        conn.execute(sa.text(
            "INSERT INTO device_template_attributes (project_id, "
            "template_id, key, value, created_at) SELECT project_id, id, "
            "'monitor', :value, now() FROM device_templates"),
            {'value': monitor})
        # Each its own loopback address (all of 127/8 answers on Linux).
        conn.execute(sa.text(
            "UPDATE devices SET mgmt_address = '127.1.' || (n / 250) || "
            "'.' || (n % 250 + 1) FROM (SELECT id AS did, row_number() "
            "OVER (ORDER BY id) AS n FROM devices) AS numbered "
            "WHERE devices.id = numbered.did"))
    db.dispose()
    runner = engine.OperationRunner(conf, conf.host)
    watch = health.HealthWatch(conf, runner)
    ctx = svm_context.get_admin_context()

    def cpu():
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (own.ru_utime + own.ru_stime,
                children.ru_utime + children.ru_stime)

    def cycles(count):
        t0 = time.monotonic()
        next_pass, end = t0, t0 + count * args.interval
        while time.monotonic() < end:
            if time.monotonic() >= next_pass:
                watch.sync(ctx)
                next_pass += args.interval
            watch.monitor.tick()
            time.sleep(0.5)
    # The first cycle records each device's first answer (an event and
    # its monitor state, once per device): not measured.
    first = time.monotonic()
    cycles(1)
    first = time.monotonic() - first
    cpu0, t0, probes0 = cpu(), time.monotonic(), watch.monitor.probes
    cycles(args.monitor_cycles)
    wall, (own, children) = time.monotonic() - t0, cpu()
    own, children = own - cpu0[0], children - cpu0[1]
    probes = watch.monitor.probes - probes0
    watch.monitor.stop()
    db = sa.create_engine(url)
    with db.connect() as conn:
        failed = conn.execute(sa.text(
            "SELECT count(*) FROM events WHERE event_type = "
            "'device.monitor.failed'")).scalar()
        dead = conn.execute(sa.text(
            "SELECT count(*) FROM devices WHERE status = 'DEAD'")).scalar()
    db.dispose()
    print()
    print('liveness monitor: ping of a loopback address per device, a %g s '
          'interval, %d workers, %.0f s' % (
              args.interval, conf.conductor.monitor_workers, wall))
    print('  %-50s %.1f s' % ('first cycle (2000 first answers recorded)'
                              .replace('2000', str(args.devices)), first))
    print('  %-50s %.1f' % ('probes per second', probes / wall))
    print('  %-50s %.0f' % ('probes per cycle (devices: %d)' % args.devices,
                            probes / wall * args.interval))
    print('  %-50s %d; %d DEAD' % ('failed probes', failed, dead))
    print('  %-50s %.1f %% (%.1f %% + %.1f %%)' % (
        'conductor CPU share (its own + fping\'s)',
        100 * (own + children) / wall, 100 * own / wall,
        100 * children / wall))


if __name__ == '__main__':
    try:
        sys.exit(main())
    except B.BenchError as e:
        B.log('FAILED: %s' % e)
        sys.exit(2)
