"""gunicorn config of `bench/api.py --profile DIR`: cProfile in each
(sync) worker, from the moment the file DIR/enabled exists (the benchmark
creates it after its warm-up) until the worker exits; the stats go to
DIR/worker-<pid>.prof."""

import cProfile
import os

_DIR = os.environ['BENCH_PROFILE_DIR']
_FLAG = os.path.join(_DIR, 'enabled')
_PROFILE = None


def pre_request(worker, req):
    global _PROFILE
    if _PROFILE is None and os.path.exists(_FLAG):
        _PROFILE = cProfile.Profile()
        _PROFILE.enable()


def worker_exit(server, worker):
    if _PROFILE is not None:
        _PROFILE.disable()
        _PROFILE.dump_stats(os.path.join(_DIR,
                                         'worker-%d.prof' % os.getpid()))
