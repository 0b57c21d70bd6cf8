# gunicorn configuration for the dashboard (docs/deploy.md, "Production serving"):
#   gunicorn --config conf/gunicorn.conf.py dashboard.app:server
# Every knob comes from the settings (dashboard.host, port, workers, threads, timeout_seconds,
# graceful_timeout_seconds, forwarded_allow_ips): conf/default.yaml or $SALESPULSE_CONFIG < SALESPULSE_DASHBOARD__*
# variables. gunicorn's own flags and GUNICORN_CMD_ARGS still override this file.
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, when it is not pip-installed

from salespulse.serving import gunicorn_options
from salespulse.settings import SettingsError, load_settings

try:
    settings = load_settings()
except SettingsError as err:  # one line naming the key, not gunicorn's traceback of this file
    sys.exit(f"salespulse: {err}")
globals().update(gunicorn_options(settings.dashboard))


# /metrics sums every worker's counters when prometheus_client runs in multiprocess mode: an empty folder named
# before the workers start (they inherit the variable), and each dead worker's files marked as such.
def on_starting(server):
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="salespulse-metrics-")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
