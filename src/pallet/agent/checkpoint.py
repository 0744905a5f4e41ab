"""Task checkpoints on disk, one append-only journal per agent; does I/O.

``<work dir>/checkpoints/journal`` holds one JSON document a line: a task's checkpoint
(``pallet.agent.recovery``'s encoding, which carries its ``version``), or
``{"removed": "<task id>"}``. The last line about a task says what is true of it. A
call of ``update`` appends all it is given with one ``write``: a batch of launches
costs one system call, where a file per task cost an inode, a write and a rename each
(a tenth of an agent's time in ``pallet bench e2e``, most of it the file system's).

There is no fsync: a checkpoint serves an agent that restarts on the same boot of the
host, and a crashed process loses nothing the kernel's page cache holds; after a host
crash the boot id differs, no task survived, and the checkpoints are only reported as
lost. A process killed in the middle of a write can leave the last line torn: ``load``
ignores it (the launches it described are then found as cgroups nobody checkpointed,
and killed, as when the agent died just before writing). Every ``load`` rewrites the
journal with the live records only (a temporary file renamed over it), and so does an
``update`` once the journal has grown past a few times their size.

Checkpoints of earlier agents, one ``<task id>.json`` file per task, are read by
``load`` too, moved into the journal and removed. One that cannot be read back (torn,
edited by hand) is renamed ``*.corrupt`` with a warning and its task treated as not
checkpointed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from pallet.agent.recovery import Checkpoint, decode_checkpoint, encode_checkpoint
from pallet.model import check_task_id

__all__ = ["JOURNAL", "CheckpointStore"]

log = logging.getLogger(__name__)

JOURNAL = "journal"
_SUFFIX = ".json"
"""One file per task: how agents before the journal checkpointed."""
_TEMP = ".tmp"
_COMPACT_FACTOR = 4
_COMPACT_SLACK = 256 << 10
"""The journal is rewritten once it is larger than ``_COMPACT_FACTOR`` times its live
records plus this many bytes."""


class CheckpointStore:
    """The checkpoints of one agent's tasks in one directory. Thread-safe."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.journal = self.directory / JOURNAL
        self._lock = threading.Lock()
        self._live: dict[str, bytes] = {}
        """Each task's last checkpoint line, as the journal has it."""
        self._live_bytes = 0
        self._size = 0
        self._fd: int | None = None

    def write(self, checkpoint: Checkpoint) -> None:
        """Replace the task's checkpoint."""
        self.update((checkpoint,), ())

    def remove(self, task_id: str) -> None:
        self.update((), (task_id,))

    def update(self, checkpoints: Iterable[Checkpoint], removed: Iterable[str]) -> None:
        """Replace the checkpoints of ``checkpoints``' tasks and remove those of
        ``removed`` (a task not checkpointed is fine), with one append to the journal."""
        lines: list[bytes] = []
        with self._lock:
            if self._fd is None:
                self._load()
            live = self._live
            for cp in checkpoints:
                line = _line(encode_checkpoint(cp))
                old = live.get(cp.task_id)
                self._live_bytes += len(line) - (len(old) if old is not None else 0)
                live[cp.task_id] = line
                lines.append(line)
            for task_id in removed:
                old = live.pop(check_task_id(task_id), None)
                if old is not None:
                    self._live_bytes -= len(old)
                    lines.append(_line({"removed": task_id}))  # checked by the pop
            if not lines:
                return
            data = b"".join(lines)
            if self._size + len(data) > _COMPACT_FACTOR * self._live_bytes + _COMPACT_SLACK:
                self._rewrite()
            else:
                assert self._fd is not None
                _write_all(self._fd, data)
                self._size += len(data)

    def load(self) -> list[Checkpoint]:
        """Every readable checkpoint, in task id order; unreadable ones are set aside
        with a warning. Rewrites the journal with them alone (and moves the files of an
        earlier agent's checkpoints into it)."""
        with self._lock:
            return self._load()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # ------------------------------------------------------------ inside the lock

    def _load(self) -> list[Checkpoint]:
        found: dict[str, Checkpoint] = {}
        old_files = self._load_files(found)
        self._load_journal(found)
        self._live = {tid: _line(encode_checkpoint(cp)) for tid, cp in found.items()}
        self._live_bytes = sum(map(len, self._live.values()))
        self._rewrite()
        for path in old_files:  # now in the journal (a crash before this reads them again)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return [found[tid] for tid in sorted(found)]

    def _load_files(self, found: dict[str, Checkpoint]) -> list[Path]:
        """The checkpoints of an earlier agent, a file per task, into ``found``; returns
        the files read (and drops the temporary files of interrupted writes)."""
        read: list[Path] = []
        for path in sorted(self.directory.iterdir()):
            if path.name.endswith(_TEMP):
                with contextlib.suppress(OSError):  # a write the crash interrupted
                    path.unlink()
                continue
            if not path.name.endswith(_SUFFIX):
                continue
            try:
                checkpoint = decode_checkpoint(json.loads(path.read_bytes()))
                if path.name != checkpoint.task_id + _SUFFIX:
                    raise ValueError(f"it holds task {checkpoint.task_id}")
            except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeError included
                log.warning("ignoring checkpoint %s: %s", path, e)
                with contextlib.suppress(OSError):
                    path.rename(path.with_name(path.name + ".corrupt"))
                continue
            found[checkpoint.task_id] = checkpoint
            read.append(path)
        return read

    def _load_journal(self, found: dict[str, Checkpoint]) -> None:
        try:
            data = self.journal.read_bytes()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw)
                if isinstance(doc, dict) and set(doc) == {"removed"}:
                    found.pop(check_task_id(str(doc["removed"])), None)
                    continue
                checkpoint = decode_checkpoint(doc)
            except ValueError as e:  # JSONDecodeError, UnicodeError, a bad task id
                torn = number == len(lines)  # no newline after it: the write was cut short
                what = "its last line, cut short" if torn else f"line {number}"
                log.warning("ignoring %s of checkpoint journal %s: %s", what, self.journal, e)
                continue
            found[checkpoint.task_id] = checkpoint

    def _rewrite(self) -> None:
        """Replace the journal with the live records (a temporary file renamed over it)
        and append to that from now on."""
        data = b"".join(self._live.values())
        temp = self.journal.with_name(JOURNAL + _TEMP)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(temp, self.journal)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = len(data)


def _line(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
