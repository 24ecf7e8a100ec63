"""A local stand-in for the Hugging Face Hub: the endpoints `HfApi.create_repo` and `create_commit` call.

Protocol as the installed `huggingface_hub` speaks it (read from its `hf_api.py`/`_commit_api.py`):

    GET  /api/agent-harnesses                   (no token) -> {"standardEnvVars", "harnesses"}
    POST /api/repos/create                      {"name", "organization", "type", "visibility"?} -> {"url"}
    POST /api/validate-yaml                     {"content", "repoType"} -> {"errors", "warnings"}
    POST /api/{type}s/{org}/{name}/preupload/{rev}  {"files": [{"path", "sample", "size"}]}
                                                -> {"files": [{"path", "uploadMode", "shouldIgnore", "oid"}]}
    POST /api/{type}s/{org}/{name}/commit/{rev}     NDJSON: header, then {"key": "file", "value":
                                                {"path", "content" (base64), "encoding"}} per regular file
                                                -> {"commitUrl", "commitOid", "pullRequestUrl"}

The preupload answer says `regular` for every file, so contents arrive inline in the commit body
instead of through the LFS/Xet storage services a faithful fake would otherwise have to imitate too.
Every request is recorded (method, path, headers, body); anything else answers 404 and is recorded
as well, so a test sees a protocol change as an unexpected path. `status` set to 401 refuses everything.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeHub:
    url: str = ""
    status: int = 200  # 401: refuse every request, as the Hub does with a bad token
    requests: list[Request] = field(default_factory=list)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # repo id -> path -> bytes

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]


def _commit(hub: FakeHub, repo: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Store the regular files of an NDJSON commit; anything but a header and files is refused."""
    if repo not in hub.repos:
        return 404, {"error": "Repository not found"}
    for line in body.splitlines():
        item = json.loads(line)
        if item["key"] == "file":
            value = item["value"]
            assert value.get("encoding") == "base64", value.get("encoding")
            hub.files.setdefault(repo, {})[value["path"]] = base64.b64decode(value["content"])
        elif item["key"] != "header":
            return 400, {"error": f"unexpected commit operation {item['key']}"}
    return 200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/{'0' * 40}", "commitOid": "0" * 40,
                 "pullRequestUrl": None}


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads `hub.requests`
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400:
                self.send_header("X-Error-Message", body.get("error", "error"))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            hub.requests.append(Request(self.command, path, dict(self.headers.items()), body))
            if hub.status != 200:
                return self._reply(hub.status, {"error": "Invalid credentials in Authorization header"})
            parts = path.strip("/").split("/")
            if self.command == "GET" and path == "/api/agent-harnesses":  # the library's user-agent lookup
                return self._reply(200, {"standardEnvVars": [], "harnesses": {}})
            if self.command == "POST" and path == "/api/repos/create":
                payload = json.loads(body)
                repo = f"{payload['organization']}/{payload['name']}"
                hub.repos[repo] = payload
                return self._reply(200, {"url": f"{hub.url}/datasets/{repo}", "name": repo})
            if self.command == "POST" and path == "/api/validate-yaml":
                return self._reply(200, {"errors": [], "warnings": []})
            if self.command == "POST" and len(parts) == 6 and parts[0] == "api" and parts[4] == "preupload":
                files = json.loads(body)["files"]
                return self._reply(200, {"files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files
                ]})
            if self.command == "POST" and len(parts) == 6 and parts[0] == "api" and parts[4] == "commit":
                return self._reply(*_commit(hub, f"{parts[2]}/{parts[3]}", body))
            return self._reply(404, {"error": f"fake hub has no {self.command} {path}"})

        do_GET = do_POST = do_PUT = do_HEAD = _handle

    return Handler


@contextmanager
def fake_hub() -> Iterator[FakeHub]:
    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
