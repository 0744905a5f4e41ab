"""Which of a node's operator disks take a request's path and mount volumes; pure.

Mesos offered such disks as disk resources with a ``PATH`` source (shared: volumes are
carved out of it) or a ``MOUNT`` source (used whole by one volume). ``assign_disks``
is the one rule, called by the fit filter and by the view when it binds a placement,
so the scheduler, the applier's verification and the slot written agree on the disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pallet.model import NodeDisk, VolumeNeed

__all__ = ["assign_disks"]


def assign_disks(
    disks: Sequence[NodeDisk],
    used: Mapping[str, int],
    needs: Sequence[VolumeNeed],
) -> tuple[str, ...] | None:
    """The disk root for each of ``needs``, in order, or None when they do not all fit.
    A root given is kept as it is (a slot's, reserved before). The largest needs choose
    first; a ``path`` volume takes the path disk with the least room that still holds
    it (packing, as best fit), a ``mount`` volume the smallest unused mount disk at
    least its size (and at most its ``max_size``)."""
    taken = dict(used)
    out = [n.root for n in needs]
    for n in needs:
        if n.root:
            taken[n.root] = taken.get(n.root, 0) + n.size
    order = sorted((i for i, n in enumerate(needs) if not n.root), key=lambda i: -needs[i].size)
    for i in order:
        kind, size, most = needs[i].type, needs[i].size, needs[i].max_size or None
        if kind == "path":
            fits = [d for d in disks if d.type == "path" and d.size - taken.get(d.root, 0) >= size]
            best = min(fits, key=lambda d: (d.size - taken.get(d.root, 0), d.root), default=None)
        else:
            fits = [
                d
                for d in disks
                if d.type == "mount"
                and not taken.get(d.root)
                and size <= d.size <= (most or d.size)
            ]
            best = min(fits, key=lambda d: (d.size, d.root), default=None)
        if best is None:
            return None
        taken[best.root] = taken.get(best.root, 0) + size
        out[i] = best.root
    return tuple(out)
