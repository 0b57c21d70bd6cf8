"""The simulator, the ingest API and the probes with the landing folder and the lake on a non-local file system
(fsspec's ``memory://``; HDFS cannot run here, and WebHDFS goes through the same fsspec calls), and on "HDFS" served
by tests/webhdfs.py to the real WebHDFS client: files appear complete under their final names only, hold what was
sent, and nothing is written outside the landing folder."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from dashboard.app import create_app
from salespulse.lake import MANIFEST, STATUS
from salespulse.schema import SALES_EVENT
from salespulse.settings import SimulatorSettings, load_settings
from salespulse.simulator.run import simulate
from salespulse.storage import STAGING_DIR, Storage, open_storage
from tests.accounts import write_accounts
from tests.api.test_ingest_api import AUTH, TOKEN, sale
from tests.api.test_monitoring import STREAMS
from tests.conftest import END_MS
from tests.webhdfs import serve_webhdfs

FS = MemoryFileSystem()  # one process-wide store: every test uses its own root and removes it


@pytest.fixture
def root() -> Iterator[str]:
    path = f"/test-{uuid.uuid4().hex[:8]}"
    yield path
    if FS.exists(path):
        FS.rm(path, recursive=True)


def memory_paths() -> set[str]:
    return set(FS.store) | set(FS.pseudo_dirs)


def written_outside(before: set[str], folder: str) -> set[str]:
    """Paths created since ``before`` that are neither ``folder``, in it, nor one of its parent folders."""
    return {p for p in memory_paths() - before if not (p + "/").startswith(folder + "/")
            and not folder.startswith(p + "/") and p not in ("", "/")}


def files_under(root: str) -> dict[str, bytes]:
    """Every file under ``root`` (relative name -> bytes), hidden staging files included."""
    return {path.removeprefix(root + "/"): FS.cat_file(path) for path in FS.find(root)}


def test_simulator_lands_in_a_remote_folder_what_it_lands_locally(root: str, tmp_path: Path) -> None:
    before = memory_paths()
    for out in (open_storage(f"memory://{root}/landing"), tmp_path):
        simulate(SimulatorSettings(seed=5, history_rate=0.05, rate=2.0), out, history_days=1, seconds=3,
                 stop=threading.Event(), say=lambda _: None, end_ms=END_MS, progress=False)
    remote = files_under(f"{root}/landing")
    local = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert remote == local  # same names, same bytes (the run is pinned in time)
    names = set(remote)
    assert {n.split("/")[0] for n in names} == {"history", "sales", "inventory"}
    assert any(n.startswith("sales/") for n in names) and any(n.startswith("history/sales/") for n in names)
    assert not any(STAGING_DIR in n or n.endswith(".part") for n in names)  # staging emptied, no temp names left
    assert written_outside(before, f"{root}/landing") == set()


def test_write_atomic_publishes_only_complete_files_inside_the_root(root: str) -> None:
    landing = open_storage(f"memory://{root}/landing")
    seen_while_writing = []

    def write(sink: Any) -> None:
        sink.write(b"order_id\n1\n")
        seen_while_writing.append((landing.exists("sales/a.csv"), landing.find("sales", ".csv")))
        sink.write(b"2\n")

    assert landing.write_atomic("sales", "a.csv", write) == f"memory://{root}/landing/sales/a.csv"
    assert seen_while_writing == [(False, [])]  # nothing under the final name until the rename
    assert files_under(f"{root}/landing") == {"sales/a.csv": b"order_id\n1\n2\n"}

    def fail(sink: Any) -> None:
        sink.write(b"half")
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        landing.write_atomic("sales", "b.csv", fail)
    assert set(files_under(f"{root}/landing")) == {"sales/a.csv"}  # the half file is neither published nor left
    for folder, name in (("../outside", "c.csv"), ("/abs", "c.csv"), ("sales", "../c.csv"), ("sales", ".hidden")):
        with pytest.raises(ValueError):
            landing.write_atomic(folder, name, write)
    assert not FS.exists(f"{root}/outside") and set(files_under(root)) == {"landing/sales/a.csv"}


def _settings(root: str, **more: Any) -> Any:
    overrides = {"paths.landing": f"memory://{root}/landing", "paths.lake": f"memory://{root}/lake",
                 "paths.models": f"/nonexistent/{root}/models", "api.tokens": [TOKEN],
                 "hdfs.version_check_seconds": 0}
    overrides.update(more)
    return load_settings(overrides=overrides)


def test_ingest_api_lands_one_complete_file_in_a_remote_landing(root: str, tmp_path: Path) -> None:
    before = memory_paths()
    client = create_app(_settings(root)).server.test_client()
    rows = [sale(i) for i in range(12)]
    response = client.post("/api/v1/sales", json=rows, headers=AUTH)
    assert response.status_code == 201, response.get_json()
    name = response.get_json()["file"]
    landed = files_under(f"{root}/landing")
    assert set(landed) == {f"sales/{name}"}
    (tmp_path / name).write_bytes(landed[f"sales/{name}"])
    frame = pd.read_csv(tmp_path / name, dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(SALES_EVENT.names)
    assert frame["order_id"].tolist() == [f"pos-{i}" for i in range(12)]
    assert frame["sales"].astype(float).sum() == pytest.approx(147.0 * 12)
    assert written_outside(before, f"{root}/landing") == set()


def test_ingest_api_answers_503_when_the_hdfs_landing_is_down(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = load_settings(overrides={
        "paths.landing": "hdfs://127.0.0.1:8020/salespulse/landing", "paths.lake": str(tmp_path / "lake"),
        "paths.models": str(tmp_path / "models"), "api.tokens": [TOKEN],
        "hdfs.webhdfs_url": f"http://127.0.0.1:{port}"})
    response = create_app(settings).server.test_client().post("/api/v1/sales", json=[sale(1)], headers=AUTH)
    assert response.status_code == 503
    assert "nothing was landed" in response.get_json()["error"] and "127.0.0.1" not in response.get_json()["error"]


def _publish_status(lake: Storage, age_seconds: float) -> None:
    updated = datetime.now(timezone.utc) - timedelta(seconds=age_seconds)
    status = {"updated_at": updated.isoformat(), "events": {"sales": {**STREAMS["sales"], "files_in_landing": 2}}}
    lake.fs.pipe(lake.path("_status/.next"), json.dumps(status).encode())
    lake.fs.mv(lake.path("_status/.next"), lake.path(STATUS))


def test_readyz_and_metrics_read_a_remote_lake(root: str, tmp_path: Path) -> None:
    settings = _settings(root, **{"auth.users_file": str(write_accounts(tmp_path / "users.json", {"admin": None}))})
    client = create_app(settings).server.test_client()
    assert client.get("/readyz").get_json()["reason"].startswith("lake not readable: no published manifest")
    lake = open_storage(settings.paths.lake)
    lake.fs.pipe(lake.path(MANIFEST), json.dumps({"tables": {}, "schemas": {}, "streams": STREAMS}).encode())
    assert client.get("/readyz").get_json()["reason"].startswith("no stream status yet")
    _publish_status(lake, 5)
    assert client.get("/readyz").status_code == 200
    _publish_status(lake, 3600)  # a newer status file: read again although the lake's manifest is unchanged
    assert client.get("/readyz").get_json()["reason"].startswith("stream stale: last batch 36")
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'salespulse_stream_rows{event="sales",kind="in"} 120.0' in metrics
    assert 'salespulse_stream_files_in_landing{event="sales"} 2.0' in metrics


def test_simulator_and_ingest_api_land_on_hdfs_through_webhdfs(tmp_path: Path) -> None:
    """The real WebHDFS client over HTTP against tests/webhdfs.py: files appear complete, owned by hdfs.user."""
    with serve_webhdfs(tmp_path / "hdfs") as namenode:
        settings = load_settings(overrides={
            "paths.landing": "hdfs://namenode:8020/salespulse/landing", "paths.lake": str(tmp_path / "lake"),
            "paths.models": str(tmp_path / "models"), "api.tokens": [TOKEN], "hdfs.webhdfs_url": namenode.url,
            "hdfs.user": "salespulse"})
        landing = open_storage(settings.paths.landing, settings.hdfs)
        simulate(SimulatorSettings(seed=8, rate=2.0), landing, history_days=0, seconds=2, stop=threading.Event(),
                 say=lambda _: None, end_ms=END_MS, progress=False)
        simulate(SimulatorSettings(seed=8, rate=2.0), tmp_path / "local", history_days=0, seconds=2,
                 stop=threading.Event(), say=lambda _: None, end_ms=END_MS, progress=False)
        response = create_app(settings).server.test_client().post("/api/v1/sales", json=[sale(1), sale(2)],
                                                                   headers=AUTH)
        assert response.status_code == 201, response.get_json()
        api_file = f"sales/{response.get_json()['file']}"

        root = namenode.local("/salespulse/landing")
        landed = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        local = {p.relative_to(tmp_path / "local").as_posix(): p.read_bytes()
                 for p in (tmp_path / "local").rglob("*") if p.is_file()}
        assert landed.pop(api_file).decode().splitlines()[1].startswith('"pos-1",')
        assert landed == local and landed  # the simulator's files, byte for byte; no staging file left
        assert not list((root / STAGING_DIR).iterdir())
        assert {namenode.owners[f"/salespulse/landing/{name}"] for name in [*landed, api_file]} == {"salespulse"}
        assert namenode.ops["RENAME"] == len(landed) + 1  # each file published by one rename

        # HDFS refuses a rename onto an existing name with "false": the writer raises, and leaves nothing behind
        with pytest.raises(FileExistsError):
            landing.write_atomic("sales", api_file.split("/")[1], lambda sink: sink.write(b"other"))
        assert not list((root / STAGING_DIR).iterdir())
        assert (root / api_file).read_bytes().startswith(b'"order_id",')
