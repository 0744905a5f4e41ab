"""The Mesos fetcher: a task's ``fetch`` URIs downloaded into its sandbox before it starts,
through a per-agent cache; does I/O (HTTP, files).

For each ``FetchUri`` (Marathon's ``fetch`` item; the legacy ``uris`` become these):

- ``http``/``https`` URIs are downloaded (redirects followed, as ``curl -L`` does in
  Mesos); ``file://`` URIs and absolute paths are copied from this node.
- The file lands in the sandbox under ``destPath`` (Mesos' ``output_file``, a relative
  path) or the last segment of the URI's path.
- ``executable`` makes it executable (and it is not extracted); ``extract`` unpacks an
  archive into the sandbox (``archives``); the archive itself stays, as in Mesos.
- ``cache``: the download goes through the agent's cache, keyed by URI: later tasks copy
  it from there without a download, and tasks that ask for it at the same time share
  one download. The cache holds at most ``limit`` bytes, least recently used entries
  go first, never one a task is copying; a file larger than the whole cache is fetched
  without being kept.
- Everything fetched is owned by the task's user.

A failure names the URI and what went wrong ("fetch http://h/app.jar: 404 Not Found"):
it becomes the TASK_FAILED message. Each fetch is logged to the sandbox's ``stderr``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import httpx

from pallet.agent.archives import ArchiveError, extract
from pallet.agent.users import TaskUser
from pallet.model import FetchUri, PalletError

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "FetchCache",
    "FetchCancelled",
    "FetchError",
    "Fetcher",
    "target_name",
]

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 2 << 30
"""Mesos' default ``--fetcher_cache_size``: 2 GB."""
_CHUNK = 1 << 20
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class FetchError(PalletError):
    """A URI could not be fetched; the message names it and says why."""


class FetchCancelled(FetchError):
    """The task was killed while its URIs were being fetched."""


Cancelled = Callable[[], bool]


def target_name(item: FetchUri) -> str:
    """Where ``item`` lands, relative to the sandbox."""
    if item.dest_path is not None:
        return item.dest_path
    parts = urlsplit(item.uri)
    path = parts.path if parts.scheme else item.uri
    name = PurePosixPath(unquote(path)).name
    if not name or name in (".", ".."):
        raise FetchError(f"fetch {item.uri}: the URI names no file; set destPath")
    return name


@dataclass(slots=True)
class _Entry:
    path: Path
    size: int
    used: float
    pins: int = 0


@dataclass(slots=True)
class _Download:
    done: threading.Event = field(default_factory=threading.Event)
    error: FetchError | None = None


class FetchCache:
    """Downloads kept on disk by URI, at most ``limit`` bytes, least recently used out
    first; thread-safe. Entries found on disk at start are kept (their mtime is their
    last use)."""

    def __init__(self, directory: Path, limit: int = DEFAULT_CACHE_BYTES) -> None:
        self.directory = directory
        self.limit = limit
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._downloads: dict[str, _Download] = {}
        self.downloads = 0
        """How many downloads went to the network (for tests and benchmarks)."""
        for path in self.directory.iterdir():
            if path.name.endswith(".part"):
                path.unlink(missing_ok=True)  # a download an earlier run left unfinished
            elif path.is_file():
                st = path.stat()
                self._entries[path.name] = _Entry(path, st.st_size, st.st_mtime)

    def used(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    @contextlib.contextmanager
    def pinned(self, uri: str, download: Callable[[Path], None]) -> Iterator[tuple[Path, bool]]:
        """The cached file of ``uri`` (downloaded with ``download(path)`` unless it is
        there already or another task is downloading it), kept from eviction while the
        block runs; and whether it came from the cache without a download of ours."""
        key = hashlib.sha256(uri.encode()).hexdigest()[:32]
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.pins += 1
                    entry.used = time.time()
                    hit = True
                    break
                pending = self._downloads.get(key)
                ours = pending is None
                if pending is None:
                    pending = self._downloads[key] = _Download()
            if not ours:
                pending.done.wait()
                if pending.error is not None and not isinstance(pending.error, FetchCancelled):
                    raise pending.error
                continue  # cached now, or its downloader was killed: look again
            got = self._download(key, uri, pending, download)
            if isinstance(got, Path):  # larger than the whole cache: used once, not kept
                try:
                    yield got, False
                finally:
                    got.unlink(missing_ok=True)
                return
            entry, hit = got, False
            break
        try:
            yield entry.path, hit
        finally:
            with self._lock:
                entry.pins -= 1
            with contextlib.suppress(OSError):
                os.utime(entry.path)

    def _download(
        self, key: str, uri: str, pending: _Download, download: Callable[[Path], None]
    ) -> _Entry | Path:
        """Download into the cache and pin the new entry; or, when the file is larger
        than the whole cache, return it under a temporary name for one use."""
        part = self.directory / f"{key}.{uuid.uuid4().hex}.part"
        try:
            download(part)
            size = part.stat().st_size
            with self._lock:
                self.downloads += 1
                if size > self.limit:
                    return part
                self._evict(self.limit - size)
                path = self.directory / key
                part.replace(path)
                entry = self._entries[key] = _Entry(path, size, time.time(), pins=1)
                return entry
        except FetchError as e:
            pending.error = e
            part.unlink(missing_ok=True)
            raise
        except OSError as e:
            pending.error = FetchError(f"fetch {uri}: cannot write the cache: {e.strerror}")
            part.unlink(missing_ok=True)
            raise pending.error from e
        finally:
            with self._lock:
                self._downloads.pop(key, None)
            pending.done.set()

    def _evict(self, room: int) -> None:
        """Drop unpinned entries, least recently used first, until ``room`` bytes hold
        everything kept. Called with the lock held."""
        total = sum(e.size for e in self._entries.values())
        for key, entry in sorted(self._entries.items(), key=lambda kv: kv[1].used):
            if total <= room:
                return
            if entry.pins:
                continue
            entry.path.unlink(missing_ok=True)
            del self._entries[key]
            total -= entry.size


class Fetcher:
    """Fetches a task's URIs into its sandbox; one per agent, thread-safe."""

    def __init__(self, cache: FetchCache) -> None:
        self.cache = cache
        self._http = httpx.Client(timeout=_TIMEOUT, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def fetch(
        self,
        items: tuple[FetchUri, ...],
        sandbox: Path,
        user: TaskUser,
        cancelled: Cancelled = lambda: False,
    ) -> None:
        """Fetch every item into ``sandbox`` in order; ``FetchError`` on the first that
        fails, ``cancelled()`` checked between chunks."""
        for item in items:
            started = time.monotonic()
            name = target_name(item)
            dest = sandbox / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if item.cache:
                get = functools.partial(self._get, item.uri, cancelled=cancelled)
                with self.cache.pinned(item.uri, get) as (cached, hit):
                    _copy(cached, dest, item.uri)
            else:
                hit = False
                self._get(item.uri, dest, cancelled=cancelled)
            if item.executable:
                dest.chmod(0o755)
            elif item.extract:
                try:
                    extracted = extract(dest, sandbox, name)
                except ArchiveError as e:
                    raise FetchError(f"fetch {item.uri}: {e}") from e
            note = " from the cache" if hit else ""
            if item.extract and not item.executable and extracted:
                note += ", extracted"
            _log(
                sandbox, f"fetched {item.uri} to {name}{note} in {time.monotonic() - started:.2f} s"
            )
        if not user.is_agent:
            _chown_tree(sandbox, user)

    def _get(self, uri: str, dest: Path, *, cancelled: Cancelled) -> None:
        """Download or copy ``uri`` to ``dest`` (written under a temporary name first)."""
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        part = dest.with_name(dest.name + ".part")
        try:
            if scheme in ("http", "https"):
                self._download(uri, part, cancelled)
            elif scheme == "file" or (not scheme and uri.startswith("/")):
                source = unquote(parts.path) if scheme else uri
                try:
                    shutil.copyfile(source, part)
                except OSError as e:
                    raise FetchError(f"fetch {uri}: {e.strerror or e}") from e
            else:
                raise FetchError(
                    f"fetch {uri}: unsupported scheme {scheme or '(none)'!r}; "
                    "Pallet fetches http, https and file URIs"
                )
            part.replace(dest)
        finally:
            part.unlink(missing_ok=True)

    def _download(self, uri: str, dest: Path, cancelled: Cancelled) -> None:
        try:
            with self._http.stream("GET", uri) as response:
                if response.status_code != 200:
                    raise FetchError(
                        f"fetch {uri}: {response.status_code} {response.reason_phrase}".rstrip()
                    )
                with open(dest, "wb") as out:
                    for chunk in response.iter_bytes(_CHUNK):
                        if cancelled():
                            raise FetchCancelled(f"fetch {uri}: cancelled (the task was killed)")
                        out.write(chunk)
        except httpx.HTTPError as e:
            raise FetchError(f"fetch {uri}: {type(e).__name__}: {e}") from e
        except OSError as e:
            raise FetchError(f"fetch {uri}: cannot write {dest.name}: {e.strerror}") from e


def _copy(source: Path, dest: Path, uri: str) -> None:
    part = dest.with_name(dest.name + ".part")
    try:
        shutil.copyfile(source, part)
        part.replace(dest)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise FetchError(f"fetch {uri}: cannot copy from the cache: {e.strerror}") from e


def _chown_tree(root: Path, user: TaskUser) -> None:
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            with contextlib.suppress(OSError):
                os.chown(os.path.join(directory, name), user.uid, user.gid, follow_symlinks=False)


def _log(sandbox: Path, line: str) -> None:
    with contextlib.suppress(OSError), open(sandbox / "stderr", "a") as err:
        err.write(f"pallet fetcher: {line}\n")
