"""A small WebHDFS server over a local folder, for tests: HDFS itself cannot run here (no Hadoop server jars), so
this stands in for the namenode's REST API (https://hadoop.apache.org/docs/stable/hadoop-project-dist/hadoop-hdfs/
WebHDFS.html) at the edge, and the project's real client code (fsspec's WebHDFS, DuckDB reading through it) runs
against it over real HTTP. It follows HDFS where the project depends on it: reads and writes are redirected
(307) to a "datanode" URL, RENAME answers ``{"boolean": false}`` instead of an error when the target exists,
files are owned by the ``user.name`` that created them, and every status call moves ``accessTime`` (as reads
do on HDFS), so nothing may treat it as part of a file's identity."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from tests.servers import serve_handler

PREFIX = "/webhdfs/v1"


@dataclass
class FakeNamenode:
    root: Path  # the local folder holding the HDFS tree
    url: str = ""  # http://127.0.0.1:PORT, set once serving
    ops: Counter = field(default_factory=Counter)  # operations asked of the namenode (not the datanode hops)
    owners: dict[str, str] = field(default_factory=dict)  # HDFS path -> user.name that created it

    def local(self, hdfs_path: str) -> Path:
        return self.root / hdfs_path.lstrip("/")


def _status(node: FakeNamenode, path: str, local: Path) -> dict:
    st = local.stat()
    return {"accessTime": int(time.time() * 1000), "blockSize": 134217728, "childrenNum": 0,
            "fileId": st.st_ino, "group": "supergroup", "length": 0 if local.is_dir() else st.st_size,
            "modificationTime": st.st_mtime_ns // 1_000_000, "owner": node.owners.get(path, "hdfs"),
            "pathSuffix": "", "permission": "755" if local.is_dir() else "644", "replication": 1,
            "type": "DIRECTORY" if local.is_dir() else "FILE"}


def _handler(node: FakeNamenode) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:  # quiet
            return

        def _reply(self, code: int, body: object | bytes | None = None, location: str | None = None) -> None:
            data = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
            self.send_response(code)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes)
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _missing(self, path: str) -> None:
            self._reply(404, {"RemoteException": {"exception": "FileNotFoundException",
                                                  "javaClassName": "java.io.FileNotFoundException",
                                                  "message": f"File does not exist: {path}"}})

        def _handle(self) -> None:
            parsed = urlparse(self.path)
            path = unquote(parsed.path.removeprefix(PREFIX)) or "/"
            query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            op, local = query.get("op", "").upper(), node.local(path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if query.get("datanode") == "true":  # the second hop of a redirected read or write
                if op == "OPEN":
                    data = local.read_bytes()
                    offset = int(query.get("offset", 0))
                    length = int(query.get("length", len(data) - offset))
                    return self._reply(200, data[offset:offset + length])
                if op == "CREATE":
                    local.write_bytes(body)
                    node.owners[path] = query.get("user.name", "dr.who")
                    return self._reply(201)
                with local.open("ab") as sink:  # APPEND
                    sink.write(body)
                return self._reply(200)
            node.ops[op] += 1
            if op in ("OPEN", "CREATE", "APPEND"):
                if op != "CREATE" and not local.is_file():
                    return self._missing(path)
                if op == "CREATE":
                    local.parent.mkdir(parents=True, exist_ok=True)
                hop = f"{node.url}{PREFIX}{quote(path)}?{parsed.query}&datanode=true"
                return self._reply(307, location=hop)
            if op == "GETFILESTATUS":
                if not local.exists():
                    return self._missing(path)
                return self._reply(200, {"FileStatus": _status(node, path, local)})
            if op == "LISTSTATUS":
                if not local.exists():
                    return self._missing(path)
                children = sorted(local.iterdir()) if local.is_dir() else [local]
                statuses = [{**_status(node, f"{path.rstrip('/')}/{c.name}", c),
                             "pathSuffix": c.name if local.is_dir() else ""} for c in children]
                return self._reply(200, {"FileStatuses": {"FileStatus": statuses}})
            if op == "MKDIRS":
                local.mkdir(parents=True, exist_ok=True)
                node.owners.setdefault(path, query.get("user.name", "dr.who"))
                return self._reply(200, {"boolean": True})
            if op == "RENAME":
                target = node.local(query["destination"])
                if not local.exists() or target.exists() or not target.parent.is_dir():
                    return self._reply(200, {"boolean": False})  # HDFS refuses without an error
                os.rename(local, target)
                node.owners[query["destination"]] = node.owners.pop(path, "hdfs")
                return self._reply(200, {"boolean": True})
            if op == "DELETE":
                if local.is_dir():
                    shutil.rmtree(local)
                elif local.exists():
                    local.unlink()
                return self._reply(200, {"boolean": True})
            return self._reply(400, {"RemoteException": {"exception": "IllegalArgumentException",
                                                         "message": f"unsupported op {op}"}})

        do_GET = do_PUT = do_POST = do_DELETE = _handle

    return Handler


@contextmanager
def serve_webhdfs(root: Path) -> Iterator[FakeNamenode]:
    """A FakeNamenode serving ``root`` on a free loopback port until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    node = FakeNamenode(root)
    with serve_handler(_handler(node)) as node.url:
        yield node
