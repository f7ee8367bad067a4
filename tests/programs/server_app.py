"""A WSGI application that sets up gmr through the public API, for gunicorn
and uWSGI tests. Its configuration file comes from GMR_TEST_CONFIG."""

import os

from oslo_config import cfg

import gmr
from gmr import opts as gmr_opts

CONF = cfg.ConfigOpts()
gmr_opts.set_defaults(CONF)
CONF([], project="server-app", default_config_files=[os.environ["GMR_TEST_CONFIG"]])

if os.environ.get("GMR_TEST_POSTFORK"):
    from uwsgidecorators import postfork

    @postfork
    def _rearm_in_worker() -> None:
        gmr.rearm()

gmr.TextGuruMeditation.setup_autorun("1.0", service_name="app", conf=CONF)


def application(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()}\n".encode()]
