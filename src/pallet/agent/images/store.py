"""The agent's image store: each image pulled once, each layer stored once, images in use
kept, the rest collected least recently used first under a size limit; does I/O.

Layout under the store's directory::

    blobs/sha256/<hex>      compressed layers, configs, manifests (skopeo writes them)
    layers/<diff id hex>/   one unpacked snapshot per layer (a lower dir of overlayfs)
    layers/<hex>.size       bytes the snapshot takes
    images/<key>.json       a pulled image (``Image``): reference, digests, layers, config
    pulls.jsonl             one line per pull: reference, digest, seconds, bytes fetched

Concurrency: tasks that need the same reference at once share one pull; images that
share a layer share its unpacking. A reference already in the store is used without
asking the registry, unless the app sets ``forcePullImage``.

Collection: the store's size is its blobs and snapshots. After each pull, while it is
above ``limit``, the least recently used image that no task uses is forgotten, and the
blobs and snapshots no remaining image needs are deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pallet.agent.exits import sandbox_bytes
from pallet.agent.images.config import Image, ImageError, Layer, read_image
from pallet.agent.images.layers import (
    HEAD,
    Unpacked,
    compression_of,
    compression_of_head,
    follow,
    unpack_blob,
    unpack_layer,
    unpack_stream,
)
from pallet.agent.images.pull import Puller
from pallet.model.images import ImageReference

__all__ = ["DEFAULT_LIMIT", "ImageStore"]

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 20 << 30
"""Bytes of images an agent keeps by default (20 GiB)."""
_UNPACKERS = 2
_FOLLOWERS = 8
"""Blobs unpacked at once while a pull runs (skopeo downloads up to 6 at once)."""


@dataclass(slots=True)
class _InFlight:
    done: threading.Event = field(default_factory=threading.Event)
    image: Image | None = None
    error: ImageError | None = None


class ImageStore:
    """Pulls, unpacks and keeps images for one agent; thread-safe."""

    def __init__(
        self,
        root: Path,
        *,
        puller: Puller | None = None,
        limit: int = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.limit = limit
        self._clock = clock
        for sub in ("layers", "images", "scratch"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.rmtree(root / "scratch", ignore_errors=True)  # pulls an earlier run left
        (root / "scratch").mkdir()
        self.puller = puller or Puller(root / "blobs", root / "scratch")
        self._lock = threading.Lock()
        self._pulls: dict[str, _InFlight] = {}
        self._unpacks: dict[str, _InFlight] = {}
        self._users: dict[str, str] = {}
        """task id -> the reference of the image it runs (never collected)."""
        self._last_used: dict[str, float] = {}
        for path in (root / "layers").glob(".*.tmp"):
            shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------ using images

    def ensure(
        self,
        ref: ImageReference,
        *,
        force: bool = False,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Image:
        """The image ``ref`` names, pulled if the store lacks it (or ``force``), its
        layers unpacked. ``ImageError`` with the registry's answer if it cannot be had."""
        key = str(ref)
        while True:
            with self._lock:
                pending = self._pulls.get(key)
                if pending is None:
                    if not force and (image := self.image(key)) is not None:
                        self._last_used[key] = self._clock()
                        return image
                    pending = self._pulls[key] = _InFlight()
                    ours = True
                else:
                    ours = False
            if not ours:
                pending.done.wait()  # a pull of the same reference under way: share it
                if pending.image is not None:
                    return pending.image
                if pending.error is not None and "cancelled" not in str(pending.error):
                    raise pending.error
                continue
            try:
                pending.image = self._pull(ref, cancelled)
            except ImageError as e:
                pending.error = e
                raise
            finally:
                with self._lock:
                    self._pulls.pop(key, None)
                pending.done.set()
            self.collect(keep=key)
            return pending.image

    def image(self, reference: str) -> Image | None:
        """The stored image of ``reference`` (its canonical text), if any."""
        path = self._record(reference)
        try:
            return Image.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("forgetting unreadable image record %s: %s", path, e)
            path.unlink(missing_ok=True)
            return None

    def layer_dirs(self, image: Image) -> list[Path]:
        """The snapshots of ``image``, top layer first (overlayfs' ``lowerdir`` order)."""
        return [self._snapshot(layer) for layer in reversed(image.layers)]

    @contextlib.contextmanager
    def using(self, task_id: str, image: Image) -> Iterator[None]:
        """Mark ``image`` in use by ``task_id`` (see ``use``), undone if the block fails."""
        self.use(task_id, image.reference)
        try:
            yield
        except BaseException:
            self.release(task_id)
            raise

    def use(self, task_id: str, reference: str) -> None:
        """``task_id`` runs ``reference``: it is not collected until ``release``."""
        with self._lock:
            self._users[task_id] = reference
            self._last_used[reference] = self._clock()

    def release(self, task_id: str) -> None:
        with self._lock:
            reference = self._users.pop(task_id, None)
            if reference is not None:
                self._last_used[reference] = self._clock()

    # ------------------------------------------------------------ pulling

    def _pull(self, ref: ImageReference, cancelled: Callable[[], bool]) -> Image:
        started = time.monotonic()
        before = self._blob_bytes()
        layers = self.root / "layers"
        with _EarlyUnpacker(self.puller.blobs / "sha256", layers, cancelled) as early:
            pulled = self.puller.pull(ref, cancelled, tick=early.tick)
            image = read_image(
                str(ref),
                pulled.manifest_digest,
                pulled.manifest,
                pulled.config_digest,
                pulled.config,
                self._clock(),
            )
            placed = early.finish(image.layers, self._snapshot, self._lock)
        missing = [x for x in image.layers if not self._snapshot(x).is_dir()]
        if missing:
            with ThreadPoolExecutor(min(_UNPACKERS, len(missing))) as pool:
                for future in [pool.submit(self._unpack, x, cancelled) for x in missing]:
                    future.result()
        with self._lock:
            self._write_record(image)
            self._last_used[image.reference] = self._clock()
        seconds = time.monotonic() - started
        fetched = max(0, self._blob_bytes() - before)
        with open(self.root / "pulls.jsonl", "a") as out:
            line = {
                "reference": image.reference,
                "digest": image.manifest_digest,
                "seconds": round(seconds, 3),
                "bytes": fetched,
            }
            out.write(json.dumps(line) + "\n")
        log.info(
            "pulled %s (%d layers, %d unpacked while downloading, %d after, %.1f MiB "
            "fetched) in %.2f s",
            image.reference,
            len(image.layers),
            placed,
            len(missing),
            fetched / (1 << 20),
            seconds,
        )
        return image

    def _unpack(self, layer: Layer, cancelled: Callable[[], bool]) -> None:
        """Unpack ``layer`` unless it is there; a layer unpacked for another image at the
        same time is waited for, not unpacked twice."""
        key = layer.diff_id
        while True:
            with self._lock:
                if self._snapshot(layer).is_dir():
                    return
                pending = self._unpacks.get(key)
                ours = pending is None
                if pending is None:
                    pending = self._unpacks[key] = _InFlight()
            if not ours:
                pending.done.wait()
                continue
            try:
                size = unpack_layer(
                    self.puller.blob(layer.digest), layer, self._snapshot(layer), cancelled
                )
                self._snapshot(layer).with_suffix(".size").write_text(str(size))
                return
            except OSError as e:
                raise ImageError(f"layer {layer.digest}: cannot unpack: {e}") from e
            finally:
                with self._lock:
                    self._unpacks.pop(key, None)
                pending.done.set()

    # ------------------------------------------------------------ collecting

    def size(self) -> int:
        """Bytes the store takes: blobs and snapshots."""
        return self._blob_bytes() + sum(self._layer_bytes(p) for p in self._snapshots())

    def collect(self, keep: str | None = None) -> int:
        """Forget least recently used images no task uses until the store fits its
        limit; delete what no remaining image needs. Returns the bytes freed."""
        freed = 0
        with self._lock:
            if self._pulls or self._unpacks:
                return 0  # their blobs and snapshots are not recorded yet: next time
            size = self.size()
            if size <= self.limit:
                return 0
            records = self._records()
            in_use = set(self._users.values()) | ({keep} if keep else set())
            candidates = sorted(
                (r for r in records if r not in in_use),
                key=lambda r: self._last_used.get(r, records[r].pulled_at),
            )
            for reference in candidates:
                if size - freed <= self.limit:
                    break
                self._record(reference).unlink(missing_ok=True)
                del records[reference]
                self._last_used.pop(reference, None)
                freed += self._sweep(records.values())
                log.info("image %s collected (store over %d MiB)", reference, self.limit >> 20)
        return freed

    def _sweep(self, kept: Iterable[Image]) -> int:
        """Delete blobs and snapshots no image in ``kept`` needs; bytes freed."""
        images = list(kept)
        blobs = {d for i in images for d in (i.manifest_digest, i.config_digest)}
        blobs |= {x.digest for i in images for x in i.layers}
        layers = {self._snapshot(x).name for i in images for x in i.layers}
        freed = 0
        for path in self._snapshots():
            if path.name not in layers:
                freed += self._layer_bytes(path)
                shutil.rmtree(path, ignore_errors=True)
                path.with_suffix(".size").unlink(missing_ok=True)
        blob_dir = self.puller.blobs / "sha256"
        for path in blob_dir.iterdir() if blob_dir.is_dir() else ():
            if f"sha256:{path.name}" not in blobs and not path.name.startswith("."):
                with contextlib.suppress(OSError):
                    freed += path.stat().st_size
                    path.unlink()
        return freed

    # ------------------------------------------------------------ files

    def _record(self, reference: str) -> Path:
        return (
            self.root / "images" / (hashlib.sha256(reference.encode()).hexdigest()[:32] + ".json")
        )

    def _write_record(self, image: Image) -> None:
        path = self._record(image.reference)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(image.to_json()))
        temp.replace(path)

    def _records(self) -> dict[str, Image]:
        out = {}
        for path in (self.root / "images").glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                image = Image.from_json(json.loads(path.read_text()))
                out[image.reference] = image
        return out

    def _snapshot(self, layer: Layer) -> Path:
        return self.root / "layers" / layer.diff_id.partition(":")[2]

    def _snapshots(self) -> list[Path]:
        return [
            p for p in (self.root / "layers").iterdir() if p.is_dir() and not p.name.startswith(".")
        ]

    def _layer_bytes(self, snapshot: Path) -> int:
        try:
            return int(snapshot.with_suffix(".size").read_text())
        except (OSError, ValueError):
            return 0

    def _blob_bytes(self) -> int:
        blob_dir = self.puller.blobs / "sha256"
        total = 0
        for path in blob_dir.iterdir() if blob_dir.is_dir() else ():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def pulls(self) -> list[dict[str, object]]:
        """The pulls this store made (``pulls.jsonl``), oldest first."""
        try:
            lines = (self.root / "pulls.jsonl").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]


class _EarlyUnpacker:
    """Unpacks layers while skopeo pulls them, before the image's config says which diff
    id each should have. A blob skopeo is still writing is followed as it grows: its
    bytes are decompressed, hashed and unpacked as they arrive, so the unpacking keeps
    pace with the download instead of starting when it ends (skopeo downloads the layers
    at once, so they all end together). A blob that appears whole in the blob directory
    (too small to catch, or written some other way) is unpacked from there. ``finish``
    keeps the snapshots whose content is a layer of the image (by the diff id computed
    while unpacking) and drops the rest; a layer none matched is unpacked as usual."""

    def __init__(self, blobs: Path, layers: Path, cancelled: Callable[[], bool]) -> None:
        self.blobs = blobs
        self.layers = layers
        self.cancelled = cancelled
        self._seen = set(os.listdir(blobs)) if blobs.is_dir() else set()
        self._followed: set[Path] = set()
        self._inodes: set[tuple[int, int]] = set()
        """Files being followed: when one lands in the blob directory it is not unpacked
        a second time."""
        self._pool = ThreadPoolExecutor(_FOLLOWERS, thread_name_prefix="unpack")
        self._jobs: list[Future[Unpacked | None]] = []
        self._files: list[BinaryIO] = []
        self._closing = threading.Event()

    def __enter__(self) -> _EarlyUnpacker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for f in self._files:  # those of followers that never started
            f.close()
        for job in self._jobs:
            with contextlib.suppress(Exception):
                done = job.result(timeout=0) if job.done() else None
                if done is not None and done.path.exists():
                    shutil.rmtree(done.path, ignore_errors=True)

    def tick(self, partial: list[Path]) -> None:
        """Follow the blobs skopeo started writing, and unpack those that appeared whole,
        since the last look."""
        for path in partial:
            if path in self._followed:
                continue
            try:
                f = open(path, "rb", buffering=0)  # noqa: SIM115 (the follower closes it)
            except FileNotFoundError:
                continue  # already renamed: it is in the blob directory, whole
            self._followed.add(path)
            self._files.append(f)
            st = os.fstat(f.fileno())
            self._inodes.add((st.st_dev, st.st_ino))
            self._jobs.append(self._pool.submit(self._follow, path, f))
        if not self.blobs.is_dir():
            return
        for name in os.listdir(self.blobs):
            if name in self._seen or name.startswith("."):
                continue
            self._seen.add(name)
            try:
                st = os.stat(self.blobs / name)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in self._inodes:
                self._jobs.append(self._pool.submit(self._unpack, self.blobs / name))

    def _follow(self, path: Path, f: BinaryIO) -> Unpacked | None:
        with f:
            st = os.fstat(f.fileno())

            def written() -> bool:
                """skopeo is done with the file: it renamed it (raises if it dropped it)."""
                if self._closing.is_set():
                    raise ImageError(f"{path.name}: the pull ended before the blob did")
                try:
                    now = os.lstat(path)
                except FileNotFoundError:
                    now = None
                if os.fstat(f.fileno()).st_nlink == 0:
                    raise ImageError(f"{path.name}: the download was abandoned")
                return now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)

            chunks = follow(f, written, self.cancelled)
            head = b""
            for chunk in chunks:
                head += chunk
                if len(head) >= HEAD:
                    break
            compression = compression_of_head(head)
            if compression is None:
                return None  # a manifest or a config
            return unpack_stream(
                itertools.chain([head], chunks),
                compression,
                self.layers,
                self.cancelled,
                name=path.name,
            )

    def _unpack(self, blob: Path) -> Unpacked | None:
        compression = compression_of(blob)
        if compression is None:
            return None  # a manifest or a config
        return unpack_blob(blob, compression, self.layers, self.cancelled)

    def finish(
        self, layers: tuple[Layer, ...], snapshot: Callable[[Layer], Path], lock: threading.Lock
    ) -> int:
        """Move the early snapshots of ``layers`` into place; how many were."""
        found: dict[str, Unpacked] = {}
        extra: list[Unpacked] = []
        for job in self._jobs:
            try:
                done = job.result()
            except Exception as e:  # unpacked again, the usual way, with the usual errors
                log.debug("early unpacking failed: %s", e)
                continue
            if done is not None and done.diff_id in found:
                extra.append(done)  # the same content twice (two images pulled at once)
            elif done is not None:
                found[done.diff_id] = done
        self._jobs = []
        placed = 0
        for layer in layers:
            done = found.pop(layer.diff_id, None)
            if done is None:
                continue
            with lock:
                target = snapshot(layer)
                if not target.exists():
                    done.path.replace(target)
                    target.with_suffix(".size").write_text(str(sandbox_bytes(target)))
                    placed += 1
                    continue
            shutil.rmtree(done.path, ignore_errors=True)
        for done in [*found.values(), *extra]:
            shutil.rmtree(done.path, ignore_errors=True)
        return placed
