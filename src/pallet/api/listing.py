"""The ``GET /v2/apps`` body joined from cached per-app pieces, plain or gzipped; pure (no
I/O, no clock), compression through ``zlib``.

Each app's piece holds its JSON bytes and the same bytes, after their separator, as a raw
deflate fragment ended with a sync flush (byte-aligned, not final), compressed with the
previous app's JSON as its preset dictionary: in the listing the previous app's bytes are
exactly what precedes the fragment, so its back-references resolve, and concatenated
fragments are one deflate stream that compresses about as well as deflating the whole
list (independent fragments were ~6 times bigger). A listing after a write is then a
gzip header, the cached fragments of the apps that did not change (and whose predecessor
did not), a few new ones, the suffix's final block, and the CRC-32 and length of the
plain bytes: no re-serialization and no re-compression of the list.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["LEVEL", "ListingPieces", "gzip_header"]

# A piece is compressed once per change of its app (or of the app before it), so a level
# above gzip's fastest is affordable: about 0.1 ms for a 700-byte app.
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

    @staticmethod
    def plain(pieces: list[_Piece]) -> bytes:
        """``{"apps":[...]}``: the pieces' JSON joined."""
        return PREFIX + _SEP.join([p.plain for p in pieces]) + SUFFIX

    @staticmethod
    def gzipped(pieces: list[_Piece], plain: bytes) -> bytes:
        """``plain`` gzipped, from the pieces' cached fragments (``plain`` is their join)."""
        parts = [gzip_header(), _deflate(PREFIX, b"")]
        after = PREFIX
        for p in pieces:
            parts.append(p.frag(after))
            after = p.plain
        parts.append(_deflate(SUFFIX, after, final=True))
        parts.append(struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF))
        return b"".join(parts)
