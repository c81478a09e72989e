"""Process start-up shared by every servicevm command."""

from oslo_config import cfg
from oslo_log import log as logging
from oslo_messaging import opts as messaging_opts

from servicevm import conf as svm_conf  # noqa: registers the options
from servicevm import version

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

_LOGGING_REGISTERED = False


def prepare_service(argv=None, default_config_files=None, defaults=None):
    """Register options, parse the command line and config files, and set
    up logging. ``defaults`` maps option names (``group.name``) to
    defaults applied before parsing."""
    global _LOGGING_REGISTERED
    if not _LOGGING_REGISTERED:
        logging.register_options(CONF)
        # paramiko logs every ssh connection at INFO.
        logging.set_defaults(default_log_levels=(
            logging.get_default_log_levels() + ['paramiko=WARN']))
        _LOGGING_REGISTERED = True
    for group, opts in messaging_opts.list_opts():
        CONF.register_opts(opts, group=group)
    for key, value in (defaults or {}).items():
        group, _, name = key.rpartition('.')
        CONF.set_default(name, value, group=group or None)
    CONF(argv if argv is not None else [], project='servicevm',
         version=version.version_string(),
         default_config_files=default_config_files)
    logging.setup(CONF, 'servicevm')
    return CONF
