"""A small, real HTTP server that speaks the part of the Hugging Face Hub protocol a push uses.

It listens on ``127.0.0.1`` (a free port) in a background thread and answers the
routes that ``huggingface_hub`` 0.36's ``HfApi.create_repo``, ``create_branch``,
``create_commit`` (preupload, README validation, LFS batch / upload / verify,
NDJSON commit), ``repo_info``, ``list_repo_refs`` and ``whoami`` call, with the
JSON shapes, headers and status codes the real client reads (taken from
``huggingface_hub/hf_api.py``, ``_commit_api.py`` and ``lfs.py``):

=======  ==================================================  =====================================
method   path                                                 used by
=======  ==================================================  =====================================
GET      /api/whoami-v2                                       ``whoami``
POST     /api/repos/create                                    ``create_repo`` (409 + ``url`` if it exists)
GET      /api/models/{repo_id}[/revision/{rev}]               ``repo_info`` (``create_repo`` on 403)
GET      /api/models/{repo_id}/refs                           ``list_repo_refs`` (``create_branch`` on 403)
POST     /api/models/{repo_id}/branch/{branch}                ``create_branch`` (409 if it exists)
POST     /api/validate-yaml                                   ``create_commit`` when README.md is added
POST     /api/models/{repo_id}/preupload/{rev}                ``create_commit``: "regular" or "lfs" per file
POST     /{repo_id}.git/info/lfs/objects/batch                LFS batch: upload/verify hrefs to this server
PUT      /lfs-storage/{oid}                                   LFS "basic" upload of the bytes (no auth, like S3)
POST     /lfs-verify/{repo_id}                                LFS verify step
POST     /api/models/{repo_id}/commit/{rev}                   NDJSON commit (header, file, lfsFile lines)
GET      /api/models/{repo_id}/tree/{rev}[/{path}]            ``list_repo_tree`` (transformers' chat templates)
GET/HEAD /{repo_id}/resolve/{rev}/{path}                      ``hf_hub_download``, ``snapshot_download``:
                                                              regular files 200 with ``ETag``, ``X-Repo-Commit``;
                                                              LFS files 302 to ``/lfs-blob/{oid}`` with
                                                              ``X-Linked-Etag`` / ``X-Linked-Size``
GET/HEAD /lfs-blob/{oid}                                      the LFS bytes the 302 points to
=======  ==================================================  =====================================

Downloads (``from_pretrained("owner/name")``, ``snapshot_download``) read what was
committed: ``{rev}`` is a branch or a commit id (``snapshot_download`` asks for the
commit ``repo_info`` returned); a public repo needs no token, a private one does.

The client offers ``"xet"`` in the LFS batch ``transfers`` when ``hf_xet`` is
installed, but it is the *server* that picks the transfer; this server always
answers ``"transfer": "basic"`` so the client uploads over plain LFS to it.

What it received is recorded (``repos``, ``created``, ``branches_created``,
``commits``, ``lfs_objects``, ``lfs_batches``, ``auth_headers``, ``requests``,
``calls``), and it can be told to fail:
:meth:`HubServer.fail` answers a status for the next N matching requests, and
:meth:`HubServer.hang` sleeps past the client's timeout before answering.

Example:
    >>> with HubServer(tokens={"hf_x"}) as hub:          # doctest: +SKIP
    ...     HfApi(endpoint=hub.url, token="hf_x").whoami()["name"]
    'tester'
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

import pytest

__all__ = ["HubServer", "Fault", "hub_server"]

# Files the Hub's default model .gitattributes sends to LFS (a subset of the real list).
DEFAULT_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib",
    "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet",
    "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "*.tar",
    "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
    "saved_model/**/*",
)
REGULAR_MAX_BYTES = 10 * 1024 * 1024

_REPO = r"(?P<repo>[^/]+/[^/]+|[^/]+)"


@dataclass
class Fault:
    """One injected failure: answer ``status`` (or hang ``hang_s`` seconds) ``times`` times."""

    status: int | None = None
    times: int | None = 1  # None: until cleared
    path_regex: str | None = None
    method: str | None = None
    message: str = "injected failure"
    hang_s: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None


@dataclass
class _Repo:
    repo_id: str
    private: bool
    branches: dict[str, str | None] = field(default_factory=lambda: {"main": None})
    files: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {"main": {}})
    snapshots: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # commit id -> files

    def tree(self, rev: str) -> tuple[str, dict[str, dict[str, Any]]] | None:
        """(commit id, files) of a branch or a commit id; None when neither."""
        if rev in self.branches:
            return self.branches[rev] or "0" * 40, self.files.get(rev, {})
        if rev in self.snapshots:
            return rev, self.snapshots[rev]
        return None


class HubServer:
    """A threaded HTTP server on 127.0.0.1 that imitates the Hub endpoints a push uses."""

    def __init__(self, tokens: set[str] | None = None, user: str = "tester", orgs: tuple[str, ...] = ("org",)):
        self.tokens = set(tokens or ())  # accepted bearer tokens; empty set: accept any token
        self.user = user
        self.orgs = tuple(orgs)
        self.lfs_patterns = DEFAULT_LFS_PATTERNS
        self.lock = threading.RLock()
        self.repos: dict[str, _Repo] = {}
        self.created: list[dict[str, Any]] = []  # one entry per successful create_repo call
        self.branches_created: list[tuple[str, str]] = []
        self.commits: list[dict[str, Any]] = []
        self.lfs_objects: dict[str, bytes] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> bytes of regular (non-LFS) committed files
        self.lfs_batches: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self.calls: list[dict[str, Any]] = []  # same, with the Authorization header of each request
        self.faults: list[Fault] = []
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "HubServer":
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake any hanging handler
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- faults
    def fail(self, status: int, times: int | None = 1, *, path_regex: str | None = None,
             method: str | None = None, message: str = "injected failure") -> None:
        """Answer ``status`` with a JSON ``{"error": message}`` to the next ``times`` matching requests."""
        with self.lock:
            self.faults.append(Fault(status=status, times=times, path_regex=path_regex, method=method, message=message))

    def hang(self, seconds: float, times: int | None = 1, *, path_regex: str | None = None,
             method: str | None = None) -> None:
        """Sleep ``seconds`` (or until the server stops) before handling the next matching requests."""
        with self.lock:
            self.faults.append(Fault(hang_s=seconds, times=times, path_regex=path_regex, method=method))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # ----------------------------------------------------------------- helpers for tests
    def last_commit(self) -> dict[str, Any]:
        assert self.commits, f"no commit received; requests: {self.requests}"
        return self.commits[-1]

    def paths(self, method: str | None = None) -> list[str]:
        return [p for m, p, _ in self.requests if method is None or m == method]

    def is_lfs_path(self, path: str, size: int, sample: bytes) -> bool:
        if size > REGULAR_MAX_BYTES or b"\x00" in sample:
            return True
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.lfs_patterns)


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/0.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep pytest output quiet
        pass

    # --------------------------------------------------------------- plumbing
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any = None, *, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        with self.hub.lock:  # recorded before the client can see the answer
            self.hub.requests.append((self.command, self.path, status))
            self.hub.calls.append({"method": self.command, "path": self.path, "status": status,
                                   "authorization": self.headers.get("Authorization")})
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": " ".join(message.split())}  # a header value is one line
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers=headers)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization")
        if not auth or not auth.startswith("Bearer "):
            self._error(401, "Invalid username or password.")
            return False
        if self.hub.tokens and auth[len("Bearer "):] not in self.hub.tokens:
            self._error(401, "Invalid credentials in Authorization header")
            return False
        return True

    def _can_write(self, namespace: str) -> bool:
        return namespace in (self.hub.user, *self.hub.orgs)

    def _repo(self, repo_id: str) -> _Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "Repository not found", code="RepoNotFound")
        return repo

    def _handle(self) -> None:
        body = self._read_body()  # always consume the body, so keep-alive stays in sync
        path = urlsplit(self.path).path
        self.hub.auth_headers.append(self.headers.get("Authorization"))
        fault = self.hub._take_fault(self.command, path)
        if fault is not None and fault.hang_s:
            self.hub._release.wait(fault.hang_s)
        elif fault is not None and fault.status is not None:
            self._error(fault.status, fault.message)
            return
        try:
            self._route(self.command, path, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before the answer

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    # --------------------------------------------------------------- routes
    def _route(self, method: str, path: str, body: bytes) -> None:
        routes = [
            ("GET", r"/api/whoami-v2", self._whoami),
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("POST", rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", self._create_branch),
            ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", self._preupload),
            ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", self._commit),
            ("GET", rf"/api/models/{_REPO}/refs", self._refs),
            ("GET", rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<prefix>.+))?", self._tree),
            ("GET", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
            ("HEAD", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
            ("GET", r"/lfs-blob/(?P<oid>[0-9a-f]{64})", self._lfs_blob),
            ("HEAD", r"/lfs-blob/(?P<oid>[0-9a-f]{64})", self._lfs_blob),
            ("GET", rf"/api/models/{_REPO}/revision/(?P<rev>[^/]+)", self._repo_info),
            ("GET", rf"/api/models/{_REPO}", self._repo_info),
            ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", self._lfs_batch),
            ("PUT", r"/lfs-storage/(?P<oid>[0-9a-f]{64})", self._lfs_put),
            ("POST", rf"/lfs-verify/{_REPO}", self._lfs_verify),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                handler(body, **params)
                return
        self._error(404, f"no route for {method} {path}")

    def _whoami(self, body: bytes) -> None:
        if not self._authorized():
            return
        self._send(200, {
            "type": "user", "name": self.hub.user, "fullname": "Test User",
            "orgs": [{"name": org} for org in self.hub.orgs],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
        })

    def _create_repo(self, body: bytes) -> None:
        if not self._authorized():
            return
        data = json.loads(body or b"{}")
        namespace = data.get("organization") or self.hub.user
        repo_id = f"{namespace}/{data['name']}"
        url = f"{self.hub.url}/{repo_id}"
        if not self._can_write(namespace):
            self._error(403, f"You don't have the rights to create a model under the namespace \"{namespace}\"")
            return
        with self.hub.lock:
            if repo_id in self.hub.repos:
                self._send(409, {"error": "You already created this model repo", "url": url},
                           headers={"X-Error-Message": "You already created this model repo"})
                return
            self.hub.repos[repo_id] = _Repo(repo_id=repo_id, private=bool(data.get("private", False)))
            self.hub.created.append({"repo_id": repo_id, "private": data.get("private"), "type": data.get("type")})
        self._send(200, {"url": url, "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]})

    def _validate_yaml(self, body: bytes) -> None:
        if not self._authorized():
            return
        self._send(200, {"errors": [], "warnings": []})

    def _repo_info(self, body: bytes, repo: str, rev: str = "main") -> None:
        found = self._readable(repo, rev)
        if found is None:
            return
        info, sha, files = found
        siblings = [{"rfilename": p} for p in sorted(files)]
        self._send(200, {"id": repo, "modelId": repo, "sha": info.branches[rev] if rev in info.branches else sha,
                         "private": info.private, "siblings": siblings})

    def _readable(self, repo: str, rev: str) -> tuple[_Repo, str, dict[str, dict[str, Any]]] | None:
        """The repo and the (commit, files) of ``rev``, or None after answering 401/404.

        A request with a token must carry a valid one; a public repo is readable without.
        """
        info = self.hub.repos.get(repo)
        if self.headers.get("Authorization") or info is None or info.private:
            if not self._authorized():
                return None
        if info is None:
            self._error(404, "Repository not found", code="RepoNotFound")
            return None
        found = info.tree(rev)
        if found is None:
            self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
            return None
        return info, found[0], found[1]

    def _tree(self, body: bytes, repo: str, rev: str, prefix: str = "") -> None:
        found = self._readable(repo, rev)
        if found is None:
            return
        _, _, files = found
        base = prefix.strip("/") + "/" if prefix.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, meta in sorted(files.items()):
            if not path.startswith(base):
                continue
            head, _, rest = path[len(base):].partition("/")
            if rest:
                entries.setdefault(base + head, {"type": "directory", "path": base + head, "oid": "0" * 40, "size": 0})
            else:
                entries[path] = {"type": "file", "path": path, "size": meta["size"], "oid": meta["sha256"][:40]}
        if base and not entries:
            self._error(404, f"{prefix}: no such path in {repo}@{rev}", code="EntryNotFound")
            return
        self._send(200, list(entries.values()))

    def _resolve(self, body: bytes, repo: str, rev: str, file: str) -> None:
        found = self._readable(repo, rev)
        if found is None:
            return
        _, sha, files = found
        meta = files.get(file)
        if meta is None:
            self._error(404, f"Entry not found: {file}", code="EntryNotFound")
            return
        headers = {"X-Repo-Commit": sha, "ETag": f'"{meta["sha256"]}"'}
        if meta["lfs"]:
            headers.update({"Location": f"{self.hub.url}/lfs-blob/{meta['sha256']}", "X-Linked-Etag": f'"{meta["sha256"]}"',
                            "X-Linked-Size": str(meta["size"])})
            self._send(302, None, headers=headers)
            return
        self._send_bytes(self.hub.blobs[meta["sha256"]], headers)

    def _lfs_blob(self, body: bytes, oid: str) -> None:
        data = self.hub.lfs_objects.get(oid)
        if data is None:
            self._error(404, f"LFS object {oid} not found")
            return
        self._send_bytes(data, {"ETag": f'"{oid}"'})

    def _send_bytes(self, data: bytes, headers: dict[str, str]) -> None:
        with self.hub.lock:
            self.hub.requests.append((self.command, self.path, 200))
            self.hub.calls.append({"method": self.command, "path": self.path, "status": 200,
                                   "authorization": self.headers.get("Authorization")})
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _refs(self, body: bytes, repo: str) -> None:
        if not self._authorized():
            return
        info = self._repo(repo)
        if info is None:
            return
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c or "0" * 40}
                    for n, c in info.branches.items()]
        self._send(200, {"branches": branches, "converts": [], "tags": []})

    def _create_branch(self, body: bytes, repo: str, branch: str) -> None:
        if not self._authorized():
            return
        info = self._repo(repo)
        if info is None:
            return
        if not self._can_write(repo.split("/")[0]):
            self._error(403, "You don't have write access to this repo")
            return
        with self.hub.lock:
            if branch in info.branches:
                self._error(409, "Reference already exists")
                return
            start = (json.loads(body or b"{}") or {}).get("startingPoint") or "main"
            info.branches[branch] = info.branches.get(start)
            info.files[branch] = dict(info.files.get(start, {}))
            self.hub.branches_created.append((repo, branch))
        self._send(200, {})

    def _preupload(self, body: bytes, repo: str, rev: str) -> None:
        if not self._authorized():
            return
        info = self._repo(repo)
        if info is None:
            return
        if rev not in info.branches:
            self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
            return
        files = []
        for item in json.loads(body)["files"]:
            sample = base64.b64decode(item.get("sample", ""))
            lfs = self.hub.is_lfs_path(item["path"], int(item["size"]), sample)
            files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                          "shouldIgnore": False, "oid": None})
        self._send(200, {"files": files, "commitOid": info.branches[rev] or "0" * 40})

    def _lfs_batch(self, body: bytes, repo: str) -> None:
        if not self._authorized():
            return
        if self.hub.repos.get(repo) is None:
            self._error(404, "Repository not found", code="RepoNotFound")
            return
        data = json.loads(body)
        self.hub.lfs_batches.append(data)
        objects = []
        for obj in data["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/lfs-storage/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.hub.url}/lfs-verify/{repo}", "header": {}},
                }
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects},
                   content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, body: bytes, oid: str) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            self._error(400, "uploaded bytes do not match the oid")
            return
        with self.hub.lock:
            self.hub.lfs_objects[oid] = body
        self._send(200, None)

    def _lfs_verify(self, body: bytes, repo: str) -> None:
        if not self._authorized():
            return
        data = json.loads(body)
        stored = self.hub.lfs_objects.get(data.get("oid", ""))
        if stored is None or len(stored) != data.get("size"):
            self._error(404, f"LFS object {data.get('oid')} not found")
            return
        self._send(200, {"success": True})

    def _commit(self, body: bytes, repo: str, rev: str) -> None:
        if not self._authorized():
            return
        info = self._repo(repo)
        if info is None:
            return
        if not self._can_write(repo.split("/")[0]):
            self._error(403, "You don't have write access to this repo")
            return
        if rev not in info.branches:
            self._error(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
            return
        header: dict[str, Any] = {}
        files: dict[str, dict[str, Any]] = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                content = base64.b64decode(value["content"])
                digest = hashlib.sha256(content).hexdigest()
                self.hub.blobs[digest] = content
                files[value["path"]] = {"size": len(content), "lfs": False, "sha256": digest}
            elif key == "lfsFile":
                stored = self.hub.lfs_objects.get(value["oid"])
                if stored is None:
                    self._error(400, f"LFS file {value['path']} ({value['oid']}) was never uploaded")
                    return
                files[value["path"]] = {"size": len(stored), "lfs": True, "sha256": value["oid"]}
            else:
                self._error(400, f"unsupported commit operation {key!r}")
                return
        with self.hub.lock:
            oid = hashlib.sha1(f"{repo}{rev}{len(self.hub.commits)}{time.time()}".encode()).hexdigest()
            info.branches[rev] = oid
            info.files.setdefault(rev, {}).update(files)
            info.snapshots[oid] = dict(info.files[rev])
            self.hub.commits.append({
                "repo_id": repo, "revision": rev, "summary": header.get("summary"),
                "description": header.get("description"), "files": files, "oid": oid,
            })
        self._send(200, {"success": True, "commitOid": oid, "commitUrl": f"{self.hub.url}/{repo}/commit/{oid}",
                         "hookOutput": "", "pullRequestUrl": None})


@pytest.fixture
def hub_server() -> Iterator[HubServer]:
    """A started :class:`HubServer` accepting the token ``hf_SECRET_test_token_123``."""
    with HubServer(tokens={"hf_SECRET_test_token_123"}) as server:
        yield server
