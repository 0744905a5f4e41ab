"""The ``GET /v2/apps`` body joined from cached per-app pieces, plain or gzipped; pure (no
I/O, no clock), compression through ``zlib``.

Each app's piece holds its JSON bytes and the same bytes, after their separator, as a raw
deflate fragment ended with a sync flush (byte-aligned, not final), compressed with the
previous app's JSON as its preset dictionary: in the listing the previous app's bytes are
exactly what precedes the fragment, so its back-references resolve, and concatenated
fragments are one deflate stream that compresses nearly as well as deflating the whole
list (at 3,000 apps: 105 KB, against 72 KB for the whole list at level 1 and 1.36 MB for
fragments compressed alone). A listing after a write is then a
gzip header, the cached fragments of the apps that did not change (and whose predecessor
did not), a few new ones, the suffix's final block, and the CRC-32 and length of the
plain bytes: no re-serialization and no re-compression of the list.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["LEVEL", "ListingPieces", "WholeListing", "gzip_header", "join_gzip", "join_plain"]

# A piece is compressed once per change of its app (or of the app before it), so a level
# above gzip's fastest is affordable: ~12 us for a 760-byte app (level 9: no smaller).
LEVEL = 6
PREFIX = b'{"apps":['
SUFFIX = b"]}"
_SEP = b","
_WINDOW = 32 * 1024  # deflate reaches back at most this far


def gzip_header() -> bytes:
    """RFC 1952's header as ``gzip.compress(mtime=0)`` writes it (no name, no time, OS
    unknown), without the extra-flags hint, which depends on the level."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def _deflate(data: bytes, after: bytes, final: bool = False) -> bytes:
    """``data`` as raw deflate that may follow ``after`` in the stream; flushed to a byte
    boundary (a sync flush) unless it is the stream's final block."""
    if after:
        c = zlib.compressobj(
            LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, after[-_WINDOW:]
        )
    else:
        c = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class _Piece:
    """One app's JSON in a listing variant, the stamp it was rendered for, and its deflate
    fragments by the bytes they follow (the listing's prefix for a first app, else the
    previous app's JSON; two kept so an unfiltered list and a filtered one do not take
    turns recompressing)."""

    __slots__ = ("frags", "plain", "stamp")

    def __init__(self, stamp: tuple[object, ...], plain: bytes) -> None:
        self.stamp = stamp
        self.plain = plain
        self.frags: list[tuple[bytes, bytes]] = []

    def frag(self, after: bytes) -> bytes:
        for prev, data in self.frags:
            if prev is after:
                return data
        data = _deflate(self.plain if after is PREFIX else _SEP + self.plain, after)
        self.frags = [(after, data), *self.frags[:1]]
        return data


class ListingPieces:
    """The pieces of one listing variant (one set of embeds), by app id."""

    def __init__(self) -> None:
        self._pieces: dict[str, _Piece] = {}

    def __len__(self) -> int:
        return len(self._pieces)

    def pieces(
        self,
        apps: Iterable[tuple[str, tuple[object, ...]]],
        render: Callable[[str], Any],
    ) -> list[_Piece]:
        """The pieces of ``apps`` (id, stamp) in order; ``render(id)`` gives an app's JSON
        bytes when its piece is missing or its stamp changed."""
        out = []
        cache = self._pieces
        for app_id, stamp in apps:
            piece = cache.get(app_id)
            if piece is None or piece.stamp != stamp:
                piece = cache[app_id] = _Piece(stamp, render(app_id))
            out.append(piece)
        return out

    def forget_all_but(self, live: Iterable[str]) -> None:
        """Drop the pieces of apps not in ``live`` (deleted ones)."""
        gone = self._pieces.keys() - set(live)
        for app_id in gone:
            del self._pieces[app_id]

    def piece(
        self, app_id: str, stamp: tuple[object, ...], render: Callable[[str], bytes]
    ) -> _Piece:
        """The app's piece for ``stamp``, rendered if missing or stale."""
        piece = self._pieces.get(app_id)
        if piece is None or piece.stamp != stamp:
            piece = self._pieces[app_id] = _Piece(stamp, render(app_id))
        return piece

    @staticmethod
    def plain(pieces: list[_Piece]) -> bytes:
        """``{"apps":[...]}``: the pieces' JSON joined."""
        return join_plain([p.plain for p in pieces])

    @staticmethod
    def gzipped(pieces: list[_Piece], plain: bytes) -> bytes:
        """``plain`` gzipped, from the pieces' cached fragments (``plain`` is their join)."""
        frags = []
        after = PREFIX
        for p in pieces:
            frags.append(p.frag(after))
            after = p.plain
        return join_gzip(frags, _deflate(SUFFIX, after, final=True), plain)


_PREFIX_FRAG = _deflate(PREFIX, b"")
_EMPTY = PREFIX + SUFFIX


def join_plain(plains: list[bytes]) -> bytes:
    """``{"apps":[`` + the apps' JSON separated by commas + ``]}``, copied once."""
    if not plains:
        return _EMPTY
    parts = [_SEP] * (2 * len(plains) + 1)
    parts[0] = PREFIX
    parts[-1] = SUFFIX
    parts[1:-1:2] = plains
    return b"".join(parts)


def join_gzip(frags: list[bytes], suffix: bytes, plain: bytes) -> bytes:
    """The gzip member of ``plain``: header, the prefix's fragment, the apps' fragments,
    the suffix's final block (``suffix``), and the CRC-32 and length of ``plain``."""
    trailer = struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF)
    return b"".join([gzip_header(), _PREFIX_FRAG, *frags, suffix, trailer])


class WholeListing:
    """Every app of one variant in id order, brought up to date from the ids that changed
    since its last build, so that a listing after a write costs the written apps' pieces
    and a few C-speed joins rather than a Python pass over every app. Holds the order,
    the pieces, their JSON and their fragments in parallel lists."""

    # More changed ids than this and the order is rebuilt from a sorted list instead.
    REBUILD = 256

    def __init__(self, variant: ListingPieces) -> None:
        self._variant = variant
        self._ids: list[str] = []
        self._pieces: list[_Piece] = []
        self._plains: list[bytes] = []
        self._frags: list[bytes | None] = []
        self._suffix = (PREFIX, _deflate(SUFFIX, PREFIX, final=True))

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def update(
        self,
        changed: set[str] | None,
        every: Callable[[], list[str]],
        stamp: Callable[[str], tuple[object, ...] | None],
        render: Callable[[str], bytes],
    ) -> None:
        """Bring the listing up to date. ``changed``: the ids whose entry may differ since
        the last update (None: unknown, rebuild); ``every()``: every listed id, sorted;
        ``stamp(id)``: an app's stamp, None if it is not listed (deleted, or a pod);
        ``render(id)``: its JSON bytes."""
        if changed is None or len(changed) > self.REBUILD:
            ids = every()
            pieces = self._variant.pieces(((i, stamp(i) or ()) for i in ids), render)
            self._ids, self._pieces = ids, pieces
            self._plains = [p.plain for p in pieces]
            self._frags = [None] * len(pieces)
        else:
            for app_id in changed:
                self._change(app_id, stamp(app_id), render)
        self._refresh()

    def _change(
        self, app_id: str, stamp: tuple[object, ...] | None, render: Callable[[str], bytes]
    ) -> None:
        ids, frags = self._ids, self._frags
        i = bisect.bisect_left(ids, app_id)
        here = i < len(ids) and ids[i] == app_id
        if stamp is None:
            if here:
                del ids[i], self._pieces[i], self._plains[i], frags[i]
                if i < len(frags):  # its successor now follows another app
                    frags[i] = None
            return
        piece = self._variant.piece(app_id, stamp, render)
        if here:
            if self._pieces[i] is piece:
                return
            self._pieces[i], self._plains[i], frags[i] = piece, piece.plain, None
        else:
            ids.insert(i, app_id)
            self._pieces.insert(i, piece)
            self._plains.insert(i, piece.plain)
            frags.insert(i, None)
        if i + 1 < len(frags):
            frags[i + 1] = None

    def _refresh(self) -> None:
        """Compress the fragments marked stale (a new piece, or a new predecessor)."""
        frags, pieces = self._frags, self._pieces
        i = 0
        while True:
            try:
                i = frags.index(None, i)
            except ValueError:
                break
            frags[i] = pieces[i].frag(pieces[i - 1].plain if i else PREFIX)
            i += 1
        last = self._plains[-1] if self._plains else PREFIX
        if self._suffix[0] is not last:
            self._suffix = (last, _deflate(SUFFIX, last, final=True))

    def plain(self) -> bytes:
        return join_plain(self._plains)

    def gzipped(self, plain: bytes) -> bytes:
        """The listing gzipped; ``plain`` is ``self.plain()``."""
        return join_gzip(self._frags, self._suffix[1], plain)  # type: ignore[arg-type]
