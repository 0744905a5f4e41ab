"""Bad input is refused with errors that name the argument; store URLs are read strictly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pallet.store import (
    Compare,
    Delete,
    DeletePrefix,
    Get,
    InvalidArgument,
    InvalidArgumentType,
    Put,
    Store,
    StoreClosed,
    StoreError,
    open_store,
)

from .conftest import Backend

Call = Callable[[Store], Awaitable[Any]]

BAD_CALLS: list[tuple[str, Call, type[Exception], str]] = [
    ("int key", lambda s: s.get(1), InvalidArgumentType, "key"),
    ("empty key", lambda s: s.get(""), InvalidArgument, "key"),
    ("bytes key", lambda s: s.put(b"k", b"v"), InvalidArgumentType, "key"),
    ("lone surrogate", lambda s: s.put("\ud800", b"v"), InvalidArgument, "key"),
    ("str value", lambda s: s.put("k", "v"), InvalidArgumentType, "value"),
    ("bytearray value", lambda s: s.put("k", bytearray(b"v")), InvalidArgumentType, "value"),
    ("None value", lambda s: s.create("k", None), InvalidArgumentType, "value"),
    ("negative lease", lambda s: s.put("k", b"v", lease=-1), InvalidArgument, "lease"),
    ("str lease", lambda s: s.put("k", b"v", lease="1"), InvalidArgumentType, "lease"),
    ("bytes prefix", lambda s: s.list(b"a"), InvalidArgumentType, "prefix"),
    ("None prefix", lambda s: s.delete_prefix(None), InvalidArgumentType, "prefix"),
    (
        "zero mod_revision",
        lambda s: s.update("k", b"", mod_revision=0),
        InvalidArgument,
        "mod_revision",
    ),
    (
        "bool mod_revision",
        lambda s: s.update("k", b"", mod_revision=True),
        InvalidArgumentType,
        "mod_revision",
    ),
    ("zero start", lambda s: s.watch("", 0), InvalidArgument, "start_revision"),
    ("float start", lambda s: s.watch("", 1.0), InvalidArgumentType, "start_revision"),
    ("zero ttl", lambda s: s.grant(0), InvalidArgument, "ttl"),
    ("float ttl", lambda s: s.grant(1.5), InvalidArgumentType, "ttl"),
    ("huge ttl", lambda s: s.grant(10**10), InvalidArgument, "ttl"),
    ("lease 0 keepalive", lambda s: s.keepalive(0), InvalidArgument, "lease"),
    ("str lease revoke", lambda s: s.revoke("7"), InvalidArgumentType, "lease"),
    ("compact 0", lambda s: s.compact(0), InvalidArgument, "revision"),
    ("compares not a list", lambda s: s.txn(Compare.exists("k")), InvalidArgumentType, "compares"),
    ("compares a string", lambda s: s.txn("k"), InvalidArgumentType, "compares"),
    ("op in compares", lambda s: s.txn([Get("k")]), InvalidArgumentType, "compares[0]"),
    (
        "compare in ops",
        lambda s: s.txn([], [Get("k"), Compare.exists("k")]),
        InvalidArgumentType,
        "on_success[1]",
    ),
    (
        "tuple op",
        lambda s: s.txn([], [], [("put", "k", b"v")]),
        InvalidArgumentType,
        "on_failure[0]",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "argument"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_bad_arguments_are_refused_naming_the_argument(
    backend: Backend, call: Call, error: type[Exception], argument: str
) -> None:
    async def body(store: Store) -> None:
        r = await store.revision()
        with pytest.raises(error) as err:
            await call(store)
        assert err.value.argument == argument  # type: ignore[attr-defined]
        assert str(err.value).startswith(f"{argument}: ")
        assert isinstance(err.value, ValueError if error is InvalidArgument else TypeError)
        assert await store.revision() == r

    backend.run(body)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: Put("", b""), "key"),
        (lambda: Put("k", "text"), "value"),
        (lambda: Delete(3), "key"),
        (lambda: DeletePrefix(None), "prefix"),
        (lambda: Compare("k", "size", "==", 1), "target"),
        (lambda: Compare("k", "version", "<=", 1), "op"),
        (lambda: Compare.version("k", "==", "1"), "operand"),
        (lambda: Compare.mod_revision("k", "==", -1), "operand"),
        (lambda: Compare.value("k", "==", "text"), "operand"),
    ],
)
def test_operations_check_their_fields_when_built(
    build: Callable[[], object], argument: str
) -> None:
    with pytest.raises((InvalidArgument, InvalidArgumentType)) as err:
        build()
    assert err.value.argument == argument


def test_compare_accepts_enum_names_as_strings() -> None:
    assert Compare("k", "mod_revision", "==", 3) == Compare.mod_revision("k", "==", 3)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "memory://host",
        "memory:///path",
        "sqlite://host/state.db",
        "sqlite://",
        "sqlite:///tmp/",
        "memory://?history=0",
        "memory://?history=ten",
        "memory://?size=3",
        "memory://#x",
        "",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        asyncio.run(open_store(url, expiry_interval=None))
    assert err.value.argument == "url"


def test_url_type_and_expiry_interval_are_checked() -> None:
    with pytest.raises(InvalidArgumentType):
        asyncio.run(open_store(b"memory://"))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="expiry_interval"):
        asyncio.run(open_store("memory://", expiry_interval=0))


def test_sqlite_urls_name_absolute_and_relative_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    async def main() -> None:
        for url in [f"sqlite://{tmp_path}/abs%20file.db", "sqlite:rel.db"]:
            store = await open_store(url, expiry_interval=None)
            await store.put("k", b"v")
            await store.close()

    asyncio.run(main())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abs file.db", "rel.db"]


def test_every_call_after_close_raises_store_closed(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.close()
        await store.close()  # idempotent
        calls: list[Call] = [
            lambda s: s.get("k"),
            lambda s: s.list(),
            lambda s: s.revision(),
            lambda s: s.put("k", b""),
            lambda s: s.watch(),
            lambda s: s.compact(1),
            lambda s: s.grant(5),
        ]
        for call in calls:
            with pytest.raises(StoreClosed, match="closed"):
                await call(store)
        assert issubclass(StoreClosed, StoreError)

    backend.run(body)
