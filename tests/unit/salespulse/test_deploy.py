"""Deployment files checked without Docker (neither `docker compose` nor Docker Hub is available here):
docker-compose.yml, the Dockerfile and the settings they use point at real code, real settings keys and
consistent ports, volumes and paths. And gunicorn really serves the app, with the project's config."""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import click
import gunicorn.config
import psutil
import pyspark
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from salespulse.cli import main
from salespulse.serving import gunicorn_options, serving_environment
from salespulse.settings import ENV_PREFIX, Settings, load_settings
from salespulse.storage import open_storage, webhdfs_options
from tests.servers import GUNICORN, free_port, serve_process, server_env

ROOT = Path(__file__).resolve().parents[3]
APP_DIR = PurePosixPath("/app")  # the Dockerfile's WORKDIR, where the checkout is copied
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OUR_IMAGE = [name for name, service in SERVICES.items() if service.get("build") == "."]
COMPOSE_SETTINGS = ROOT / "conf" / "compose.yaml"
SPARK_JARS = Path(pyspark.__file__).resolve().parent / "jars"


def command(service: str) -> list[str]:
    value = SERVICES[service].get("command", [])
    return shlex.split(value) if isinstance(value, str) else list(value)


def in_repo(path: str) -> Path:
    """A path as the image sees it (absolute under /app, or relative to WORKDIR /app) -> the checkout."""
    posix = PurePosixPath(path)
    return ROOT / (posix.relative_to(APP_DIR) if posix.is_absolute() else posix)


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


def mounts(service: str) -> dict[str, str]:
    """Container path -> named volume."""
    pairs = (entry.split(":")[:2] for entry in SERVICES[service].get("volumes", []))
    return {target: source for source, target in pairs}


def workers() -> list[str]:
    return [name for name in SERVICES if "org.apache.spark.deploy.worker.Worker" in command(name)]


def spark_class_exists(name: str) -> bool:
    entry = name.replace(".", "/") + ".class"
    return any(entry in zipfile.ZipFile(jar).namelist() for jar in SPARK_JARS.glob("spark-core_*.jar"))


# -- docker-compose.yml --------------------------------------------------------------------------------------
def test_compose_has_every_role() -> None:
    assert {"namenode", "datanode", "spark-master", "stream", "simulator", "dashboard"} <= set(SERVICES)
    assert len(workers()) == 2
    assert all(command(w)[2] == "spark://spark-master:7077" for w in workers())
    assert set(OUR_IMAGE) >= {"spark-master", *workers(), "stream", "simulator", "dashboard"}
    assert {SERVICES[name]["image"] for name in ("namenode", "datanode")} == {"apache/hadoop:3"}
    init = next(name for name in SERVICES if "hdfs dfs -mkdir" in " ".join(command(name)))
    assert SERVICES[init]["restart"] == "no"
    assert SERVICES["stream"]["depends_on"][init]["condition"] == "service_completed_successfully"


def test_compose_commands_name_real_code() -> None:
    master = command("spark-master")
    assert master[:2] == ["spark-class", "org.apache.spark.deploy.master.Master"]
    assert spark_class_exists(master[1]) and spark_class_exists(command(workers()[0])[1])
    assert (Path(pyspark.__file__).resolve().parent / "bin" / "spark-class").exists()

    # the stream: a script of the repo that spark-submits spark_jobs/stream.py to the master
    script = in_repo(command("stream")[0])
    assert script.exists() and os.access(script, os.X_OK)
    submitted = re.findall(r"(/app/\S+\.py)", script.read_text())
    assert submitted == ["/app/spark_jobs/stream.py"] and in_repo(submitted[0]).exists()
    assert "spark-submit" in script.read_text()
    assert environment("stream")["SPARK_MASTER_URL"] == "spark://spark-master:7077"

    # the simulator: a real salespulse command whose flags parse
    args = command("simulator")
    assert args[0] == "salespulse"
    sub = main.commands[args[1]]
    sub.make_context(args[1], args[2:], parent=click.Context(main, info_name="salespulse"))  # raises on a bad flag

    # the dashboard: gunicorn with the repo's config and an importable WSGI object
    args = command("dashboard")
    assert args[0] == "gunicorn" and args[1] == "--config"
    assert in_repo(args[2]) == ROOT / "conf" / "gunicorn.conf.py"
    module, attribute = args[3].split(":")
    app = getattr(importlib.import_module(module), attribute)
    assert callable(app) and app.__class__.__name__ == "Flask"


def test_compose_ports_match_the_settings_and_commands() -> None:
    settings = load_settings(COMPOSE_SETTINGS)

    def published(service: str) -> set[int]:
        return {int(port.rsplit(":", 1)[1]) for port in SERVICES[service].get("ports", [])}

    assert published("dashboard") == {settings.dashboard.port}
    assert settings.dashboard.host == "0.0.0.0"  # reachable from the published port, not only inside
    master = command("spark-master")
    assert published("spark-master") == {int(master[master.index("--webui-port") + 1])}
    assert published("namenode") == {9870}
    # the web UIs have no login: published on the host's loopback only
    assert all(port.startswith("127.0.0.1:") for s in SERVICES.values() for port in s.get("ports", []))
    hadoop = SERVICES["namenode"]["environment"]
    assert settings.paths.checkpoints.startswith("hdfs://" + hadoop["HDFS-SITE.XML_dfs.namenode.rpc-address"] + "/")
    assert hadoop["CORE-SITE.XML_fs.defaultFS"] == "hdfs://namenode:8020"
    assert settings.spark.master == "spark://spark-master:7077"


def test_compose_volumes_hold_the_settings_local_paths() -> None:
    settings = load_settings(COMPOSE_SETTINGS)
    declared = set(COMPOSE["volumes"])
    used = {source for name in SERVICES for source in mounts(name).values()}
    assert used == declared
    # landing, archive and lake live on HDFS now: no volume carries them any more
    assert declared == {"hdfs-name", "hdfs-data", "models", "auth"}

    def covered(service: str, path: str) -> bool:
        return any(PurePosixPath(path).is_relative_to(target) for target in mounts(service))

    # The model registry stays a local path: every process that loads or writes a model sees the same volume.
    for service in ("stream", *workers(), "dashboard"):
        assert covered(service, settings.paths.models), f"{service} does not mount the registry"
        assert mounts(service)[settings.paths.models] == "models"
    users_file = environment("dashboard")["SALESPULSE_AUTH__USERS_FILE"]
    assert covered("dashboard", users_file)


def test_compose_lake_and_landing_are_on_hdfs_for_every_role() -> None:
    """One lake URI and one landing URI for every role: the stream (Spark's Hadoop client), the dashboard and the
    simulator (WebHDFS) read the same conf/compose.yaml and override none of its paths."""
    settings = load_settings(COMPOSE_SETTINGS)
    hadoop = SERVICES["namenode"]["environment"]
    namenode = "hdfs://" + hadoop["HDFS-SITE.XML_dfs.namenode.rpc-address"]
    assert namenode == hadoop["CORE-SITE.XML_fs.defaultFS"] == "hdfs://namenode:8020"
    on_hdfs = {"landing": settings.paths.landing, "archive": settings.paths.archive, "lake": settings.paths.lake,
               "checkpoints": settings.paths.checkpoints}
    assert on_hdfs == {name: f"{namenode}/salespulse/{name}" for name in on_hdfs}
    for service in ("stream", *workers(), "simulator", "dashboard"):
        env = environment(service)
        assert in_repo(env["SALESPULSE_CONFIG"]) == COMPOSE_SETTINGS, service
        assert not [key for key in env if key.startswith(f"{ENV_PREFIX}PATHS__")], service

    # the Python side reaches the namenode's web server (its healthcheck's port) as the compose service name
    webhdfs = webhdfs_options(settings.paths.lake, settings.hdfs.webhdfs_url, settings.hdfs.user)
    assert (webhdfs["host"], webhdfs["port"], webhdfs["use_https"]) == ("namenode", 9870, False)
    assert f"http://localhost:{webhdfs['port']}/" in " ".join(SERVICES["namenode"]["healthcheck"]["test"])
    assert webhdfs["host"] in SERVICES and SERVICES["namenode"]["hostname"] == "namenode"
    # reads and writes are redirected to the datanode, which the clients must reach by the name it registers
    assert SERVICES["datanode"]["hostname"] == "datanode"
    storage = open_storage(settings.paths.lake, settings.hdfs)
    assert storage.fs.url == "http://namenode:9870/webhdfs/v1" and storage.root == "/salespulse/lake"

    # hdfs-init creates every HDFS folder, owned by the user the image runs as and the Python side writes as
    init = " ".join(command("hdfs-init"))
    created = re.search(r"hdfs dfs -mkdir -p ([^&]+)&&", init).group(1).split()
    assert {urlparse(uri).path for uri in on_hdfs.values()} <= set(created)
    user = re.search(r"^USER (\w+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert settings.hdfs.user == user
    assert f"hdfs dfs -chown -R {user}:{user} /salespulse" in init
    # writers through WebHDFS start once those folders exist
    for service in ("stream", "simulator", "dashboard"):
        assert SERVICES[service]["depends_on"]["hdfs-init"]["condition"] == "service_completed_successfully"


def test_compose_healthchecks_and_restart_policies() -> None:
    settings = load_settings(COMPOSE_SETTINGS)
    long_running = ["namenode", "datanode", "spark-master", *workers(), "stream", "dashboard"]
    for name in long_running:
        test = SERVICES[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 2, name
    for name in [*long_running, "simulator"]:
        assert SERVICES[name]["restart"] == "unless-stopped", name
    dashboard_check = " ".join(SERVICES["dashboard"]["healthcheck"]["test"])
    assert f"http://localhost:{settings.dashboard.port}/healthz" in dashboard_check
    assert "9870" in " ".join(SERVICES["namenode"]["healthcheck"]["test"])
    assert "8080" in " ".join(SERVICES["spark-master"]["healthcheck"]["test"])
    # the stream's stop must outlast its 60 s limit for finishing a batch (docs/operations.md)
    assert int(SERVICES["stream"]["stop_grace_period"].rstrip("s")) > 60


def _salespulse_keys() -> dict[str, str]:
    keys = {}
    for name in SERVICES:
        keys.update({k: v for k, v in environment(name).items() if k.startswith(ENV_PREFIX)})
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys[key] = value
    return keys


def test_compose_environment_names_real_settings() -> None:
    keys = _salespulse_keys()
    assert "SALESPULSE_AUTH__SECRET_KEY" in keys and "SALESPULSE_API__TOKENS" in keys
    for key in keys:
        if key == "SALESPULSE_CONFIG":
            assert in_repo(keys[key]) == COMPOSE_SETTINGS
            continue
        section, _, field = key.removeprefix(ENV_PREFIX).lower().partition("__")
        assert section in Settings.model_fields, f"{key}: no settings section {section!r}"
        model = Settings.model_fields[section].annotation
        assert field in model.model_fields, f"{key}: no setting {section}.{field}"
    json.loads(keys["SALESPULSE_API__TOKENS"])  # a JSON list, as the settings parse it


def test_env_example_holds_no_secrets_and_env_is_ignored() -> None:
    for key, value in _salespulse_keys().items():
        if key != "SALESPULSE_CONFIG" and key not in {k for s in SERVICES for k in environment(s)}:
            assert "replace-with" in value, f"{key} in .env.example looks like a real secret"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert SERVICES["dashboard"]["env_file"] == ".env"
    assert not any("env_file" in SERVICES[name] for name in SERVICES if name != "dashboard")


@pytest.mark.parametrize("name", ["default.yaml", "cluster.yaml", "compose.yaml"])
def test_settings_files_load(name: str) -> None:
    assert isinstance(load_settings(ROOT / "conf" / name), Settings)


def test_dockerfile_copies_what_exists_and_ignores_data() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:] for line in lines if line.startswith("COPY")]
    assert copies
    for parts in copies:
        sources = [p for p in parts if not p.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repo"
    text = "\n".join(lines)
    assert next(line for line in lines if line.startswith("FROM")).startswith("FROM python:3.11-slim")
    assert "openjdk-17-jre-headless" in text and re.search(r"^USER (?!root)\w+", text, re.M)
    assert "PYSPARK_PYTHON=" in text and 'CMD ["salespulse", "--help"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"data/", ".venv", ".env", "tests/artifacts/"} <= set(ignored)


# -- gunicorn ------------------------------------------------------------------------------------------------
def test_gunicorn_options_are_gunicorn_settings() -> None:
    settings = load_settings(overrides={"dashboard.host": "0.0.0.0", "dashboard.port": 9123, "dashboard.workers": 3,
                                        "dashboard.threads": 5, "dashboard.timeout_seconds": 45})
    options = gunicorn_options(settings.dashboard)
    known = {setting.name: setting for setting in gunicorn.config.KNOWN_SETTINGS}
    assert set(options) <= set(known)
    for name, value in options.items():  # gunicorn's own validators accept every value
        known[name].validator(value)
    assert options["bind"] == ["0.0.0.0:9123"]
    assert (options["workers"], options["threads"], options["timeout"]) == (3, 5, 45)
    assert options["preload_app"] is False


def test_serving_environment_round_trips_through_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = serving_environment({"paths.lake": "/srv/lake", "dashboard.workers": 3, "dashboard.host": None}, None)
    assert env == {"SALESPULSE_PATHS__LAKE": "/srv/lake", "SALESPULSE_DASHBOARD__WORKERS": "3",
                   "SALESPULSE_DASHBOARD__PRODUCTION": "true"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert (settings.paths.lake, settings.dashboard.workers, settings.dashboard.production) == ("/srv/lake", 3, True)
    assert settings.dashboard.host == "127.0.0.1"


def test_cli_workers_needs_prod(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--lake", str(tmp_path), "--workers", "2"])
    assert result.exit_code == 2 and "--workers applies to --prod only" in result.output


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any) -> None:
        return None


def _get(url: str) -> tuple[int, dict[str, str], str]:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"Accept": "text/html,application/xhtml+xml"})  # as a browser
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode(errors="replace")


def _assert_app_answers(url: str) -> None:
    """The app's page answers with a redirect to its login page, and the login page is the app's."""
    status, headers, _ = _get(url + "/?range=30d&grain=day")
    assert status == 302 and re.search(r"/login(\?|$)", headers["Location"]), (status, headers)
    status, _, body = _get(url + "/login")
    assert status == 200 and "SalesPulse" in body and 'name="password"' in body


def test_gunicorn_serves_the_app_with_the_project_config(tmp_path: Path) -> None:
    lake, port = tmp_path / "lake", free_port()
    lake.mkdir()
    env = server_env(lake, port, SALESPULSE_DASHBOARD__WORKERS="2", SALESPULSE_DASHBOARD__THREADS="2")
    log = tmp_path / "gunicorn.log"
    with serve_process(GUNICORN, env, log, port) as proc:
        _assert_app_answers(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while len(psutil.Process(proc.pid).children()) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(psutil.Process(proc.pid).children()) == 2  # dashboard.workers from the environment
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0  # graceful stop
    text = log.read_text()
    assert f"Listening at: http://127.0.0.1:{port}" in text and "Using worker: gthread" in text
    # one JSON line per request from the app (gunicorn's own access log is off), without the query string
    requests = [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"request"' in line]
    assert any(r["path"] == "/" and r["status"] == 302 and r["request_id"] for r in requests), text
    assert not any("range=" in line for line in text.splitlines())


def test_gunicorn_metrics_sum_every_workers_requests(tmp_path: Path) -> None:
    """/metrics under gunicorn counts the requests of both workers, not only those of the worker that answers the
    scrape (prometheus_client's multiprocess mode, set up by conf/gunicorn.conf.py)."""
    lake, port, metrics_dir = tmp_path / "lake", free_port(), tmp_path / "metrics"
    lake.mkdir()
    metrics_dir.mkdir()
    env = server_env(lake, port, SALESPULSE_DASHBOARD__WORKERS="2", SALESPULSE_DASHBOARD__THREADS="2",
                     PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    url = f"http://127.0.0.1:{port}"
    with serve_process(GUNICORN, env, tmp_path / "gunicorn.log", port):
        sent, deadline = 0, time.monotonic() + 30
        with ThreadPoolExecutor(8) as pool:
            # until both workers have answered some (each writes its own per-pid files in the folder)
            while len({f.stem.rsplit("_", 1)[1] for f in metrics_dir.glob("histogram_*.db")}) < 2:
                assert time.monotonic() < deadline, "one gunicorn worker answered every request"
                statuses = list(pool.map(lambda _: _get(url + "/healthz")[0], range(16)))
                assert statuses == [200] * 16
                sent += 16
        status, _, text = _get(url + "/metrics")
    assert status == 200
    counted = sum(sample.value for family in text_string_to_metric_families(text)
                  for sample in family.samples
                  if sample.name == "salespulse_http_request_duration_seconds_count"
                  and sample.labels.get("route") == "/healthz")
    assert counted == sent


def test_cli_dashboard_prod_execs_gunicorn(tmp_path: Path) -> None:
    lake, port = tmp_path / "lake", free_port()
    lake.mkdir()
    (lake / "_manifest.json").write_text('{"tables": {}, "schemas": {}}')  # a lake nothing was published to yet
    users_file = tmp_path / "users.json"
    env = server_env(lake, port, SALESPULSE_AUTH__SECRET_KEY="s" * 48, SALESPULSE_AUTH__USERS_FILE=str(users_file))
    # production mode has no default account
    subprocess.run([sys.executable, "-m", "salespulse", "users", "add", "ops", "--countries", "France",
                    "--password-stdin"], input=b"a-long-test-password\n", env=env, cwd=ROOT, check=True)
    log = tmp_path / "prod.log"
    cmd = [sys.executable, "-m", "salespulse", "dashboard", "--prod", "--workers", "1", "--lake", str(lake)]
    with serve_process(cmd, env, log, port) as proc:
        _assert_app_answers(f"http://127.0.0.1:{port}")
        # exec: the process started is now gunicorn's master, with the one worker asked for
        assert "gunicorn" in " ".join(psutil.Process(proc.pid).cmdline())
        assert len(psutil.Process(proc.pid).children()) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
    assert "1 worker(s)" in log.read_text()
