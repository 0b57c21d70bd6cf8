"""Where the Python side reads and writes the lake and the landing folder: a local folder or a remote file system.

``open_storage(uri, hdfs)`` gives one :class:`Storage` for a configured path (``paths.lake``, ``paths.landing``):
local paths (``data/lake``, ``file:/...``) use the local file system through plain ``os`` calls, exactly as
before; ``hdfs://host:port/path`` URIs are reached through WebHDFS (fsspec's HTTP client of the namenode, no JVM
or libhdfs), at ``hdfs.webhdfs_url``; any other fsspec protocol (``memory://`` in the tests) through fsspec. The
dashboard's reader (``dashboard/data.py``, via ``salespulse.lake``), monitoring, `salespulse kpis`, the simulator
and the ingest API all go through this one interface. Nothing here does I/O until a method is called.

Paths given to the methods are relative to the root, ``/``-separated, and may not leave it: a writer can never
put a file outside the landing folder.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlparse

if TYPE_CHECKING:
    import duckdb
    from fsspec import AbstractFileSystem

    from salespulse.settings import HdfsSettings

STAGING_DIR = ".staging"  # dot-prefixed: Spark's file source never lists it, so it never reads a half-written file
WEBHDFS_PORT = 9870  # the namenode's HTTP port in Hadoop 3, when hdfs.webhdfs_url is not set
# What changes when a file is replaced by rename, per file system: HDFS's file id and modification time (ms),
# fsspec's local and memory fields; never access times (HDFS updates those on reads).
_IDENTITY_FIELDS = ("fileId", "ino", "size", "length", "modificationTime", "mtime", "created")
LISTINGS_KEPT = 4096  # remote listings of published folders kept per storage (a few MB at most)


def is_local_uri(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file:")


def webhdfs_options(uri: str, webhdfs_url: str | None, user: str | None) -> dict[str, Any]:
    """The arguments of fsspec's ``WebHDFS`` for an ``hdfs://host:port/path`` URI: the namenode's HTTP address
    from ``webhdfs_url`` (``http(s)://host:port``), or the URI's host on port 9870."""
    if webhdfs_url is None and not urlparse(uri).hostname:
        raise ValueError(f"{uri} names no namenode host: set hdfs.webhdfs_url")
    target = urlparse(webhdfs_url or f"http://{urlparse(uri).hostname}:{WEBHDFS_PORT}")
    return {"host": target.hostname, "port": target.port or WEBHDFS_PORT, "user": user,
            "use_https": target.scheme == "https"}


def open_storage(uri: str, hdfs: HdfsSettings | None = None) -> Storage:
    """The storage of a configured folder or URI (no I/O: remote clients connect on first use)."""
    if is_local_uri(uri):
        return Storage(None, urlparse(uri).path if uri.startswith("file:") else uri, uri)
    import fsspec

    protocol = uri.split("://", 1)[0]
    if protocol == "hdfs":
        from fsspec.implementations.webhdfs import WebHDFS

        fs = WebHDFS(**webhdfs_options(uri, hdfs.webhdfs_url if hdfs else None, hdfs.user if hdfs else None))
    else:
        try:
            fs = fsspec.filesystem(protocol)
        except (ImportError, ValueError) as err:
            raise ValueError(f"cannot open {uri}: {err}") from None
    version_seconds = hdfs.version_check_seconds if hdfs else 0.0
    return Storage(fs, fs._strip_protocol(uri), uri, version_seconds)


def as_storage(location: Storage | str | os.PathLike[str]) -> Storage:
    """``location`` itself, or the storage of a local folder (remote URIs need the settings: open_storage)."""
    if isinstance(location, Storage):
        return location
    location = os.fspath(location)
    if not is_local_uri(location):
        raise ValueError(f"{location} is remote: open it with salespulse.storage.open_storage(uri, settings.hdfs)")
    return open_storage(location)


class Storage:
    """One folder tree: ``fs`` None means the local file system, else an fsspec file system (WebHDFS, memory)."""

    def __init__(self, fs: AbstractFileSystem | None, root: str, uri: str, version_seconds: float = 0.0):
        self.fs, self.uri = fs, uri
        self.root = root.rstrip("/") or "/"
        # remote only: a file's identity is asked at most this often (a page's requests ask dozens of times),
        # and small files are re-read only when their identity changed
        self.version_seconds = version_seconds
        self._versions: dict[str, tuple[float, str]] = {}
        self._texts: dict[str, tuple[str, str]] = {}
        self._listings: dict[tuple[str, str], list[str]] = {}

    @property
    def local(self) -> bool:
        return self.fs is None

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    def path(self, relative: str = "") -> str:
        """The path of ``relative`` on this storage's file system; ValueError when it would leave the root."""
        clean = posixpath.normpath(relative) if relative else "."
        if clean == ".." or clean.startswith(("../", "/")):
            raise ValueError(f"{relative!r} is outside {self.uri}")
        return self.root if clean == "." else posixpath.join(self.root, clean)

    def url(self, relative: str = "") -> str:
        """``relative`` as DuckDB and messages name it: a plain path locally, ``protocol:///path`` remotely."""
        path = self.path(relative)
        return path if self.fs is None else self.fs.unstrip_protocol(path)

    def attach(self, connection: duckdb.DuckDBPyConnection) -> None:
        """Let ``connection`` (and its cursors) read this storage's files by their ``url``."""
        if self.fs is not None:
            connection.register_filesystem(self.fs)

    # -- reads -----------------------------------------------------------------------------------------------
    def exists(self, relative: str) -> bool:
        path = self.path(relative)
        return os.path.exists(path) if self.fs is None else self.fs.exists(path)

    def version(self, relative: str) -> str:
        """Changes whenever the file is replaced (writers publish by rename); "" when it does not exist. Locally
        one ``stat`` (inode, size, mtime); remotely one status call (WebHDFS GETFILESTATUS), at most every
        ``version_seconds``."""
        path = self.path(relative)
        if self.fs is None:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return ""
            return f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"
        now = time.monotonic()
        known = self._versions.get(path)
        if known is not None and now - known[0] < self.version_seconds:
            return known[1]
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            identity = ""
        else:
            identity = "-".join(str(info[k]) for k in _IDENTITY_FIELDS if k in info)
        self._versions[path] = (now, identity)
        return identity

    def read_text(self, relative: str) -> str:
        """A small file's text (FileNotFoundError when absent); remotely fetched again only once it changed."""
        path = self.path(relative)
        if self.fs is None:
            with open(path, encoding="utf-8") as source:
                return source.read()
        identity = self.version(relative)
        if not identity:
            raise FileNotFoundError(self.url(relative))
        cached = self._texts.get(path)
        if cached is not None and cached[0] == identity:
            return cached[1]
        text = self.fs.cat_file(path).decode("utf-8")
        self._texts[path] = (identity, text)
        return text

    def find(self, relative: str, suffix: str, *, recursive: bool = True, published: bool = False) -> list[str]:
        """The ``url`` of every file under folder ``relative`` (only directly in it unless ``recursive``) whose
        name ends with ``suffix``, sorted; [] when the folder does not exist. ``published``: a table directory a
        manifest lists, whose files never change (writers add new directories instead), so a remote listing, one
        LISTSTATUS per sub-folder, is kept instead of repeated for every new data version."""
        folder = self.path(relative)
        if self.fs is None:
            if not recursive:
                try:
                    names = os.listdir(folder)
                except FileNotFoundError:
                    return []
                return sorted(f"{folder}/{n}" for n in names if n.endswith(suffix) and os.path.isfile(f"{folder}/{n}"))
            return sorted(f"{top}/{name}".replace(os.sep, "/") for top, _, names in os.walk(folder)
                          for name in names if name.endswith(suffix))
        key = (folder, suffix)
        if published and recursive and key in self._listings:
            return self._listings[key]
        found = self.fs.find(folder, maxdepth=None if recursive else 1)
        listing = sorted(self.fs.unstrip_protocol(f) for f in found if f.endswith(suffix))
        if published and recursive and listing:  # an empty listing may be a folder not yet visible: ask again
            if len(self._listings) >= LISTINGS_KEPT:
                self._listings.clear()
            self._listings[key] = listing
        return listing

    # -- writes ----------------------------------------------------------------------------------------------
    def write_atomic(self, folder: str, name: str, write: Callable[[BinaryIO], None]) -> str:
        """``write(sink)``'s bytes as ``folder/name``, seen by readers only complete: they go to a hidden staging
        folder beside ``folder`` (same file system, never listed by Spark), then one rename publishes them (an
        atomic rename on a local disk and on HDFS). Returns the file's ``url``."""
        if "/" in name or name.startswith((".", "_")):
            raise ValueError(f"{name!r} is not a visible file name")
        target_dir = self.path(folder)
        staging_dir = self.path(posixpath.join(posixpath.dirname(posixpath.normpath(folder or ".")), STAGING_DIR))
        staging = posixpath.join(staging_dir, f"{name}.{os.getpid()}.part")
        final = posixpath.join(target_dir, name)
        if self.fs is None:
            os.makedirs(staging_dir, exist_ok=True)
            os.makedirs(target_dir, exist_ok=True)
            try:
                with open(staging, "wb") as sink:
                    write(sink)
                os.replace(staging, final)
            finally:
                if os.path.exists(staging):
                    os.unlink(staging)
            return final
        self.fs.makedirs(staging_dir, exist_ok=True)
        self.fs.makedirs(target_dir, exist_ok=True)
        published = False
        try:
            with self.fs.open(staging, "wb") as sink:
                write(sink)
            self.fs.mv(staging, final)
            # WebHDFS answers a refused rename (e.g. the name exists) with "false", not with an error
            published = not self.fs.exists(staging)
            if not published:
                raise FileExistsError(f"could not publish {self.fs.unstrip_protocol(final)}: rename refused")
        finally:
            if not published and self.fs.exists(staging):
                self.fs.rm(staging)
        return self.fs.unstrip_protocol(final)
