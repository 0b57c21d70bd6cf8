"""salespulse/storage.py without a server: which file system a configured path opens (hdfs:// -> WebHDFS at the
configured namenode address and user), paths that may not leave the root, and the local file system's identity
and listing (the dashboard's data version and file list on a local lake)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fsspec.implementations.webhdfs import WebHDFS

from salespulse.settings import HdfsSettings, SettingsError, load_settings
from salespulse.storage import as_storage, open_storage, webhdfs_options


def test_hdfs_uri_opens_webhdfs_at_the_configured_namenode() -> None:
    storage = open_storage("hdfs://namenode:8020/salespulse/lake",
                           HdfsSettings(webhdfs_url="http://namenode:9870", user="salespulse"))
    assert isinstance(storage.fs, WebHDFS) and not storage.local
    assert storage.fs.url == "http://namenode:9870/webhdfs/v1"
    assert storage.fs.pars == {"user.name": "salespulse"}
    assert storage.root == "/salespulse/lake"
    assert storage.url("gold/sales_hourly/dir=v1/part-0.parquet") == \
        "webhdfs:///salespulse/lake/gold/sales_hourly/dir=v1/part-0.parquet"
    # the WebHDFS client strips that form back to the HDFS path, whatever host the hdfs:// URI named
    assert storage.fs._strip_protocol(storage.url("_manifest.json")) == "/salespulse/lake/_manifest.json"


@pytest.mark.parametrize(("uri", "url", "user", "expected"), [
    ("hdfs://nn.example:8020/x", None, None, {"host": "nn.example", "port": 9870, "user": None, "use_https": False}),
    ("hdfs://nn:8020/x", "https://gateway.example:14000", "etl",
     {"host": "gateway.example", "port": 14000, "user": "etl", "use_https": True}),
    ("hdfs://nn:8020/x", "http://other", None, {"host": "other", "port": 9870, "user": None, "use_https": False}),
])
def test_webhdfs_options_map_the_settings(uri: str, url: str | None, user: str | None, expected: dict) -> None:
    assert webhdfs_options(uri, url, user) == expected


def test_hdfs_settings_refuse_a_bad_address_and_a_hostless_uri() -> None:
    with pytest.raises(SettingsError, match=r"hdfs\.webhdfs_url: must be http://HOST:PORT"):
        load_settings(overrides={"hdfs.webhdfs_url": "namenode:9870"})
    with pytest.raises(ValueError, match="names no namenode host"):
        open_storage("hdfs:///salespulse/lake", HdfsSettings())
    with pytest.raises(ValueError, match="open_storage"):
        as_storage("hdfs://nn:8020/salespulse/lake")  # remote paths need the settings


@pytest.mark.parametrize("relative", ["..", "../x", "a/../../x", "/etc/passwd"])
def test_paths_may_not_leave_the_root(tmp_path: Path, relative: str) -> None:
    with pytest.raises(ValueError, match="outside"):
        as_storage(tmp_path / "landing").path(relative)


def test_local_version_changes_on_replace_and_listing_is_sorted(tmp_path: Path) -> None:
    storage = as_storage(tmp_path)
    assert storage.local and storage.version("_manifest.json") == ""
    (tmp_path / "_manifest.json").write_text("{}")
    first = storage.version("_manifest.json")
    assert first and storage.version("_manifest.json") == first
    (tmp_path / ".next").write_text("{}")  # same size, published by rename: a new inode
    os.replace(tmp_path / ".next", tmp_path / "_manifest.json")
    assert storage.version("_manifest.json") not in ("", first)

    for name in ("t/dir=b/event_date=2026-09-02/p.parquet", "t/dir=a/p.parquet", "t/dir=a/p.parquet.crc", "t/r.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert storage.find("t", ".parquet") == [f"{tmp_path}/t/dir=a/p.parquet",
                                             f"{tmp_path}/t/dir=b/event_date=2026-09-02/p.parquet"]
    assert storage.find("t", ".json", recursive=False) == [f"{tmp_path}/t/r.json"]
    assert storage.find("missing", ".parquet") == []
