"""Limits an app sets on its tasks through labels, Marathon having no field for them
(``PALLET_PIDS_MAX``); pure.

The master refuses a malformed value with a 422 naming the label, and the agent fails a
task whose value it cannot read (a job's labels, or a master older than the rule), so a
label is honoured or refused, never ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

from pallet.errors import ValidationError

__all__ = ["PIDS_MAX_CEILING", "PIDS_MAX_LABEL", "pids_max_of"]

PIDS_MAX_LABEL = "PALLET_PIDS_MAX"
"""Processes and threads each task of the app may have at once (its pids cgroup's
``pids.max``), instead of the agent's ``--task-pids-max``."""
PIDS_MAX_CEILING = 4_194_304
"""The kernel's PID_MAX_LIMIT: no machine has more pids than this."""


def pids_max_of(labels: Mapping[str, object]) -> int | None:
    """The ``PALLET_PIDS_MAX`` in ``labels`` (None: not set, the agent's default holds);
    ``ValidationError`` on ``/labels/PALLET_PIDS_MAX`` when it is not a whole number
    from 1 to 4194304."""
    raw = labels.get(PIDS_MAX_LABEL)
    if raw is None:
        return None
    text = raw.strip() if isinstance(raw, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 7 and 1 <= int(text) <= PIDS_MAX_CEILING:
        return int(text)
    raise ValidationError(
        f"/labels/{PIDS_MAX_LABEL}",
        f"{raw!r} is not a number of processes from 1 to {PIDS_MAX_CEILING}",
    )
