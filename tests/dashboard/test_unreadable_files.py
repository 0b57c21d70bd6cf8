"""Parts of the lake the manifest lists but nobody can read (a file without a Parquet footer, a file deleted from
its directory, a vanished directory) on a copy of the small real lake: the figures hold exactly the rows of the
files that can be read (summed here with pyarrow, not by the repository), and the page, /readyz and /metrics say
that part of the data is missing. A read that fails outright shows a short message with the request id, never
the error's paths or SQL."""

from __future__ import annotations

import json
import logging
import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from dash import no_update

from dashboard import callbacks, ids
from dashboard.app import create_app
from dashboard.data import LakeRepository
from dashboard.monitoring import LakeCollector, readiness
from salespulse.kpi_report import SalesFilter
from salespulse.scope import Scope
from salespulse.settings import DashboardSettings
from tests.accounts import write_accounts
from tests.dashboard.test_security import callback_body, client_for
from tests.dashboard.test_security import texts as json_texts
from tests.lakes import SampleLake

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = pytest.mark.spark
SETTINGS = DashboardSettings(time_zone="UTC")
EVERYTHING = SalesFilter()


def cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1)))


def texts(node: Any) -> list[str]:
    """Every string in a Dash component tree."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, (list, tuple)):
        return [t for child in node for t in texts(child)]
    children = getattr(node, "children", None)
    return texts(children) if children is not None else []


def gold_dirs(lake: Path) -> list[Path]:
    return [lake / d for d in json.loads((lake / "_manifest.json").read_text())["tables"]["gold_sales_hourly"]]


def gold_files(lake: Path) -> list[Path]:
    """gold_sales_hourly's files as the manifest's directories hold them (at least two, so one can go missing)."""
    files = sorted(f for d in gold_dirs(lake) for f in d.rglob("*.parquet"))
    assert len(files) > 2
    return files


def sales_in(files: list[Path]) -> int:
    """Total sales of ``files`` in cents, read with pyarrow."""
    return cents(round(sum(pq.read_table(f, columns=["sales"]).column("sales").to_pandas().sum() for f in files), 2))


def shown_sales(repo: LakeRepository) -> int:
    return cents(round(repo.sales_by(ADMIN, EVERYTHING, ("country",))["sales"].sum(), 2))


def republish(lake: Path) -> None:
    """What a writer's publish does to the manifest's identity (a new file renamed over it): a new data version."""
    staged = lake / ".manifest-copy"
    shutil.copy(lake / "_manifest.json", staged)
    os.replace(staged, lake / "_manifest.json")


def corrupt_pages(file: Path) -> None:
    """Garbles the column data of a Parquet file but keeps its footer: it lists fine and fails when read."""
    data = bytearray(file.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    for i in range(4, len(data) - 8 - footer):
        data[i] ^= 0x5A
    file.write_bytes(bytes(data))


def partial_notice(outputs: tuple[Any, ...]) -> str:
    return " ".join(texts(outputs[-1]))


def test_a_file_without_a_footer_is_left_out_and_reported(lake_copy: SampleLake) -> None:
    files = gold_files(lake_copy.lake)
    broken = files[1]
    broken.write_bytes(b"not parquet")  # e.g. a truncated copy
    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    assert shown_sales(repo) == sales_in([f for f in files if f != broken])
    assert repo.unreadable_files()["gold_sales_hourly"] == (str(broken),)
    outputs = callbacks.guarded(callbacks.overview_outputs, 8, repo, ADMIN, "?range=30d", SETTINGS)
    assert outputs[0] is not no_update  # the figures are drawn, from what could be read
    assert "Part of the data could not be read (1 file)" in partial_notice(outputs)
    assert str(broken) not in partial_notice(outputs)  # the path is for the log, not the page


def test_a_file_deleted_from_its_directory_is_reported_at_the_next_version(lake_copy: SampleLake) -> None:
    files = gold_files(lake_copy.lake)
    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    assert shown_sales(repo) == sales_in(files)
    files[0].unlink()
    republish(lake_copy.lake)
    assert shown_sales(repo) == sales_in(files[1:])
    assert repo.unreadable_files()["gold_sales_hourly"] == (str(files[0]),)
    notice = partial_notice(callbacks.guarded(callbacks.overview_outputs, 8, repo, ADMIN, "?range=30d", SETTINGS))
    assert "Part of the data could not be read (1 file)" in notice


def test_the_manifest_names_each_directorys_files_as_written(sample_lake: SampleLake) -> None:
    manifest = json.loads((sample_lake.lake / "_manifest.json").read_text())
    for table, dirs in manifest["tables"].items():
        for directory in dirs:
            on_disk = sorted(p.relative_to(sample_lake.lake / directory).as_posix()
                             for p in (sample_lake.lake / directory).rglob("*.parquet"))
            assert manifest["files"][directory] == on_disk, (table, directory)


def test_a_file_deleted_before_the_repository_ever_listed_it_is_reported(lake_copy: SampleLake) -> None:
    files = gold_files(lake_copy.lake)
    files[0].unlink()  # e.g. while the dashboard was down: this process never saw the file
    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    assert shown_sales(repo) == sales_in(files[1:])
    assert repo.unreadable_files()["gold_sales_hourly"] == (str(files[0]),)


def test_a_vanished_directory_is_reported(lake_copy: SampleLake) -> None:
    files = gold_files(lake_copy.lake)
    manifest = json.loads((lake_copy.lake / "_manifest.json").read_text())
    gone = "gold/sales_hourly/dir=deleted-by-hand"
    manifest["tables"]["gold_sales_hourly"].append(gone)
    (lake_copy.lake / ".manifest-edit").write_text(json.dumps(manifest))
    os.replace(lake_copy.lake / ".manifest-edit", lake_copy.lake / "_manifest.json")
    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    assert shown_sales(repo) == sales_in(files)
    assert repo.unreadable_files()["gold_sales_hourly"] == (str(lake_copy.lake / gone),)


def test_readiness_and_metrics_report_unreadable_files(lake_copy: SampleLake) -> None:
    (lake_copy.lake / "_status").mkdir(exist_ok=True)
    (lake_copy.lake / "_status" / "stream.json").write_text(json.dumps({"updated_at": "2026-09-21T15:00:00+00:00"}))
    now = 1_790_003_000.0  # 200 s after updated_at: a fresh stream
    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    assert readiness(repo, 1e9, now) is None

    def gauge() -> dict[str, float]:
        family = next(m for m in LakeCollector(repo).collect() if m.name == "salespulse_lake_unreadable_files")
        return {s.labels["table"]: s.value for s in family.samples}

    assert gauge()["gold_sales_hourly"] == 0
    gold_files(lake_copy.lake)[0].unlink()
    republish(lake_copy.lake)
    assert "partly unreadable" in readiness(repo, 1e9, now)
    assert gauge()["gold_sales_hourly"] == 1 and gauge()["silver_sales"] == 0


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_failed_read_shows_a_request_id_not_the_error(lake_copy: SampleLake) -> None:
    for file in gold_files(lake_copy.lake):  # listed and footers intact: only the read itself fails
        corrupt_pages(file)
    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    errors, collected = logging.getLogger("salespulse.errors"), Collected()
    errors.addHandler(collected)
    try:
        outputs = callbacks.guarded(callbacks.overview_outputs, 8, repo, ADMIN, "?range=7d", SETTINGS)
    finally:
        errors.removeHandler(collected)
    assert all(o is no_update for o in outputs[:8])  # the page keeps its last good data
    message = " ".join(texts(outputs[8]))
    for leak in (str(lake_copy.lake), "parquet", "SELECT", "Error", "Exception"):
        assert leak not in message, leak
    assert "last good data" in message
    [record] = collected.records
    assert record.fields["request_id"] in message and record.exc_info is not None  # the detail: in the log


def test_a_failed_export_answers_with_a_message_not_a_500(lake_copy: SampleLake, tmp_path: Path) -> None:
    for file in gold_files(lake_copy.lake):
        corrupt_pages(file)
    users = write_accounts(tmp_path / "users.json", {"boss": None})
    settings = lake_copy.settings.model_copy(
        update={"auth": lake_copy.settings.auth.model_copy(update={"users_file": str(users)})})
    client = client_for(create_app(settings).server, "boss")
    body = callback_body(client, f"{ids.EXPORT_DOWNLOAD}.data", {ids.EXPORT_BUTTON: 1, ids.FILTERS: "?range=7d"},
                         f"{ids.EXPORT_BUTTON}.n_clicks")
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    answer = response.get_json()["response"]
    assert ids.EXPORT_DOWNLOAD not in answer  # no file
    note = " ".join(json_texts(answer[ids.EXPORT_NOTE]["children"]))
    assert "Could not read the data to export" in note and response.headers["X-Request-ID"] in note
    assert str(lake_copy.lake) not in note and "Error" not in note
