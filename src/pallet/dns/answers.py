"""DNS answers compiled from a record table, and the reply to one query; pure (dnslib).

A reply is looked up, not built: each (name, type) the table holds is packed once
(``dnslib``) and a query is answered by copying its id, RD bit and question (so the
case the client chose is echoed, as DNS 0x20 wants) in front of the packed answers.
Names in Pallet's zones that are not in the table are NXDOMAIN; a name with records of
another type is NODATA. Anything else is not ours (``respond`` returns None: forward it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dnslib import QTYPE, RR, DNSHeader, DNSQuestion, DNSRecord

from pallet.discovery.records import ZONES, DnsRecord

__all__ = ["Answers", "Query", "parse_query"]

_QTYPES = {"A": QTYPE.A, "SRV": QTYPE.SRV}
_ANY = 255
_NOERROR, _NXDOMAIN, _FORMERR, _NOTIMP = 0, 3, 1, 4
MAX_UDP = 512


@dataclass(frozen=True, slots=True)
class Query:
    """What ``respond`` needs of a query: its wire bytes split at the question."""

    id: bytes
    flags: int
    name: bytes
    """The question's name in wire form, as sent."""
    qtype: int
    qclass: int
    end: int
    """Offset just past the question."""
    udp_size: int = MAX_UDP


def parse_query(data: bytes) -> Query | None:
    """The question of a standard query, or None if it is not one we can read."""
    if len(data) < 17:
        return None
    flags, qd, an, ns, ar = struct.unpack_from("!HHHHH", data, 2)
    if flags & 0x8000 or (flags >> 11) & 0xF or qd != 1:
        return None
    i = 12
    while True:
        if i >= len(data):
            return None
        n = data[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(data):
            return None
        i += 1 + n
    if i + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, i)
    end = i + 4
    size = MAX_UDP
    # EDNS: an OPT record right after the question raises the UDP size we may send.
    if ar and not an and not ns and end + 11 <= len(data) and data[end] == 0:
        opt_type, opt_size = struct.unpack_from("!HH", data, end + 1)
        if opt_type == 41:
            size = max(MAX_UDP, min(opt_size, 4096))
    return Query(bytes(data[:2]), flags, bytes(data[12:i]), qtype, qclass, end, size)


def _wire_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode()
        out += bytes([len(raw)]) + raw
    return out + b"\x00"


class Answers:
    """Packed replies by (lower-case wire name, type); built once per record table."""

    def __init__(self, table: Mapping[str, Iterable[DnsRecord]], ttl: int = 1) -> None:
        self.ttl = ttl
        self._replies: dict[tuple[bytes, int], bytes] = {}
        self._fast: dict[bytes, bytes] = {}
        """Question bytes (name, type, class IN; lower-cased) -> reply after the id, for
        the common query: one question, nothing else, small enough for UDP."""
        self._names: set[bytes] = set()
        for name, records in table.items():
            wire = _wire_name(name.lower())
            self._names.add(wire)
            by_type: dict[int, list[DnsRecord]] = {}
            for r in records:
                by_type.setdefault(int(_QTYPES[r.type]), []).append(r)
            by_type[_ANY] = [r for rs in list(by_type.values()) for r in rs]
            for qtype, rs in by_type.items():
                packed = self._replies[(wire, qtype)] = self._pack(name, qtype, rs)
                if 12 + len(wire) + 4 + len(packed) - 10 <= MAX_UDP:
                    question = wire + struct.pack("!HH", qtype, 1)
                    self._fast[question] = packed
        self._zones = tuple(_wire_name(z) for z in ZONES)

    def __len__(self) -> int:
        return len(self._names)

    def _pack(self, name: str, qtype: int, records: list[DnsRecord]) -> bytes:
        reply = DNSRecord(DNSHeader(id=0, qr=1, aa=1, ra=1), q=DNSQuestion(name, qtype))
        for r in records:
            reply.add_answer(*RR.fromZone(r.zone_line(self.ttl)))
        packed: bytes = reply.pack()
        qlen = len(_wire_name(name)) + 4
        return packed[2:12] + packed[12 + qlen :]  # flags + counts, then the answers

    def ours(self, name: bytes) -> bool:
        """Whether a (lower-case wire) name lies in one of Pallet's zones."""
        return any(
            name == z or (name.endswith(z) and _at_label(name, len(name) - len(z)))
            for z in self._zones
        )

    def respond_tcp(self, data: bytes) -> bytes | None:
        """``respond`` for a query that came over TCP (no size limit)."""
        return self.respond(data, tcp=True)

    def respond(self, data: bytes, tcp: bool = False) -> bytes | None:
        """The reply to ``data``, or None when the name is not in Pallet's zones."""
        if data[4:12] == b"\x00\x01\x00\x00\x00\x00\x00\x00" and not data[2] & 0xF8:
            question = data[12:]
            packed = self._fast.get(question.lower())
            if packed is not None:
                flags = bytes((packed[0] | (data[2] & 1), packed[1]))
                return data[:2] + flags + packed[2:10] + question + packed[10:]
        q = parse_query(data)
        if q is None:
            return _error(data, _FORMERR) if len(data) >= 12 else b""
        name = bytes(q.name).lower()
        question = data[12 : q.end]
        rd = q.flags & 0x0100
        packed = self._replies.get((name, q.qtype))
        if packed is not None and q.qclass == 1:
            flags = struct.unpack_from("!H", packed)[0] | rd
            reply = q.id + struct.pack("!H", flags) + packed[2:10] + question + packed[10:]
            if not tcp and len(reply) > q.udp_size:  # too big for UDP: the client retries over TCP
                return _header(q.id, 0x8600 | rd, _NOERROR) + question
            return reply
        if not self.ours(name):
            return None
        rcode = _NOERROR if name in self._names else _NXDOMAIN
        return _header(q.id, 0x8400 | rd, rcode) + question


def _at_label(name: bytes, offset: int) -> bool:
    """Whether ``offset`` in a wire name starts a label (so ``xmesos`` is not ``mesos``)."""
    i = 0
    while i < offset:
        i += 1 + name[i]
    return i == offset


def _header(qid: bytes, flags: int, rcode: int) -> bytes:
    return qid + struct.pack("!HHHHH", flags | 0x0080 | rcode, 1, 0, 0, 0)


def _error(data: bytes, rcode: int) -> bytes:
    flags = 0x8000 | 0x0080 | rcode | (data[2] << 8 & 0x0100)
    return data[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)
