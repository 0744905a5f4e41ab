"""``GET /v2/apps`` joined from per-app deflate fragments: the gzipped body unzips to
exactly the plain body, which is what serializing every app's JSON whole gives, for
several embeds and after creates, updates and deletes; a write recompresses only the
pieces it touched; deleted apps leave no cached piece behind."""

from __future__ import annotations

import gzip
import json
import random
import zlib
from typing import Any

import httpx
import pytest

import pallet.api.listing as listing
from pallet.api.listing import PREFIX, SUFFIX, ListingPieces, WholeListing
from pallet.api.marathon import parse_embed
from pallet.api.marathon.params import INDEX_EMBEDS
from pallet.control import Control

from .conftest import register
from .test_lifecycle import agents_run_everything, converge

VARIANTS: list[list[str]] = [
    [],
    ["apps.counts"],
    ["apps.deployments", "apps.lastTaskFailure"],
    ["apps.counts", "apps.deployments", "apps.lastTaskFailure"],
    ["apps.tasks"],
]


def _app(app_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 1, **extra}


def _renderer(api: httpx.AsyncClient) -> Any:
    return api._transport.app.state.pallet.renderer  # type: ignore[attr-defined]


async def _raw(api: httpx.AsyncClient, params: list[tuple[str, str]], encoding: str) -> bytes:
    """The body as sent, not unzipped by httpx."""
    async with api.stream(
        "GET", "/v2/apps", params=params, headers={"Accept-Encoding": encoding}
    ) as r:
        assert r.status_code == 200
        assert r.headers.get("Content-Encoding") == ("gzip" if encoding == "gzip" else None)
        return b"".join([chunk async for chunk in r.aiter_raw()])


def _whole(api: httpx.AsyncClient, control: Control, embed: list[str]) -> bytes:
    """The list as the previous renderer wrote it: every app's JSON in one dump."""
    embeds = parse_embed(embed, INDEX_EMBEDS)
    apps = sorted(control.state.apps.values(), key=lambda a: a.id)
    doc = {"apps": [_renderer(api).app(a, embeds) for a in apps]}
    return json.dumps(doc, separators=(",", ":")).encode()


async def _check_all_variants(api: httpx.AsyncClient, control: Control) -> None:
    for embed in VARIANTS:
        params = [("embed", e) for e in embed]
        # Gzipped first, then plain from the same generation's cache, then the reverse
        # after the plain one is dropped: both orders must agree.
        zipped = await _raw(api, params, "gzip")
        plain = await _raw(api, params, "identity")
        assert gzip.decompress(zipped) == plain, embed
        assert plain == _whole(api, control, embed), embed


@pytest.mark.anyio
async def test_gzipped_list_unzips_to_the_plain_list_through_writes(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 2)
    await _check_all_variants(api, control)  # no apps
    for i in range(6):
        r = await api.post("/v2/apps", json=_app(f"/z/app-{i}"))
        assert r.status_code == 201, r.text
    await _check_all_variants(api, control)  # deployments in flight
    await converge(control)
    await agents_run_everything(api, control)
    await converge(control)
    await _check_all_variants(api, control)  # counts
    # An update in the middle, a delete of the first and of the last, a new first app.
    r = await api.put("/v2/apps/z/app-3?force=true", json=_app("/z/app-3", cmd="sleep 601"))
    assert r.status_code == 200, r.text
    await _check_all_variants(api, control)
    for app_id in ("/z/app-0", "/z/app-5"):
        r = await api.delete(f"/v2/apps{app_id}?force=true")
        assert r.status_code == 200, r.text
    r = await api.post("/v2/apps", json=_app("/a/first", instances=0))
    assert r.status_code == 201, r.text
    await _check_all_variants(api, control)
    await converge(control)
    await _check_all_variants(api, control)
    ids = [a["id"] for a in json.loads(await _raw(api, [], "identity"))["apps"]]
    assert ids == ["/a/first", "/z/app-1", "/z/app-2", "/z/app-3", "/z/app-4"]
    # Deleted and created again between two lists: its change count starts over (and may
    # equal the old one), its record is another.
    r = await api.delete("/v2/apps/a/first?force=true")
    assert r.status_code == 200, r.text
    r = await api.post("/v2/apps", json=_app("/a/first", instances=0, cmd="sleep 9"))
    assert r.status_code == 201, r.text
    await _check_all_variants(api, control)
    cmds = [a["cmd"] for a in json.loads(await _raw(api, [], "identity"))["apps"]]
    assert cmds[0] == "sleep 9"


@pytest.mark.anyio
async def test_deleted_apps_leave_no_cached_piece(api: httpx.AsyncClient, control: Control) -> None:
    for i in range(8):
        r = await api.post("/v2/apps", json=_app(f"/gone/app-{i}", instances=0))
        assert r.status_code == 201, r.text
    await converge(control)
    for embed in VARIANTS[:2]:
        await _raw(api, [("embed", e) for e in embed], "gzip")
    renderer = _renderer(api)
    assert {len(v) for v in renderer._pieces_by_embeds.values()} == {8}
    renderer.slack = 3  # swept once more than 3 deleted apps' entries are held
    for i in range(3):
        r = await api.delete(f"/v2/apps/gone/app-{i}?force=true")
        assert r.status_code == 200, r.text
        await _raw(api, [], "gzip")
    assert {len(v) for v in renderer._pieces_by_embeds.values()} == {8}
    renderer.slack = 0
    for i in range(3, 6):
        r = await api.delete(f"/v2/apps/gone/app-{i}?force=true")
        assert r.status_code == 200, r.text
        await _raw(api, [], "gzip")
    await converge(control)
    for embed in VARIANTS[:2]:
        await _raw(api, [("embed", e) for e in embed], "gzip")
    assert {len(v) for v in renderer._pieces_by_embeds.values()} == {2}
    assert all(len(docs) <= 2 for docs in renderer._docs.values())


def _doc(i: int, version: int = 0) -> bytes:
    return json.dumps({"id": f"/app-{i:04d}", "cmd": f"sleep {version}", "n": i}).encode()


def test_pieces_join_to_one_gzip_stream_and_recompress_only_what_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deflated: list[bytes] = []
    real = listing._deflate

    def counting(data: bytes, after: bytes, final: bool = False) -> bytes:
        deflated.append(data)
        return real(data, after, final)

    monkeypatch.setattr(listing, "_deflate", counting)
    rng = random.Random(7)
    versions = {i: 0 for i in range(40)}
    variant = ListingPieces()

    def body() -> tuple[bytes, bytes]:
        ids = sorted(versions)
        pieces = variant.pieces(
            ((f"/app-{i:04d}", (versions[i],)) for i in ids),
            lambda app_id: _doc(int(app_id[5:]), versions[int(app_id[5:])]),
        )
        variant.forget_all_but(f"/app-{i:04d}" for i in ids)
        plain = ListingPieces.plain(pieces)
        assert plain == PREFIX + b",".join(_doc(i, versions[i]) for i in ids) + SUFFIX
        return plain, ListingPieces.gzipped(pieces, plain)

    plain, zipped = body()
    assert gzip.decompress(zipped) == plain
    # Each fragment draws on the app before it: far smaller than fragments made alone.
    alone = sum(len(zlib.compress(_doc(i))) for i in versions)
    assert len(zipped) < alone / 2
    for _ in range(30):
        deflated.clear()
        change = rng.choice(["update", "create", "delete"])
        if change == "update" or (change == "delete" and len(versions) < 3):
            i = rng.choice(sorted(versions))
            versions[i] += 1
        elif change == "create":
            i = max(versions) + 1 if rng.random() < 0.5 else min(versions) - 1
            versions[i] = 0
        else:
            del versions[rng.choice(sorted(versions))]
        plain, zipped = body()
        assert gzip.decompress(zipped) == plain
        assert zlib.decompress(zipped, 31) == plain
        # The changed app and the one after it, plus the prefix and the suffix.
        assert len(deflated) <= 4, change
        assert len(variant) == len(versions)
    versions.clear()
    plain, zipped = body()
    assert plain == b'{"apps":[]}'
    assert gzip.decompress(zipped) == plain


def test_the_whole_listing_follows_changes_given_only_their_ids() -> None:
    rng = random.Random(11)
    versions: dict[int, int] = {}
    variant = ListingPieces()
    whole = WholeListing(variant)

    def key(app_id: str) -> int:
        return int(app_id[5:])

    def update(changed: set[str] | None) -> None:
        whole.update(
            changed,
            lambda: [f"/app-{i:04d}" for i in sorted(versions)],
            lambda a: (versions[key(a)],) if key(a) in versions else None,
            lambda a: _doc(key(a), versions[key(a)]),
        )
        expected = PREFIX + b",".join(_doc(i, versions[i]) for i in sorted(versions)) + SUFFIX
        plain = whole.plain()
        assert plain == expected
        assert gzip.decompress(whole.gzipped(plain)) == expected

    update(None)  # empty
    for i in range(0, 60, 3):
        versions[i] = 0
    update(None)
    for _ in range(200):
        changed: set[str] = set()
        for _ in range(rng.choice([1, 1, 2, 5])):
            i = rng.randrange(0, 70)
            if i in versions and rng.random() < 0.4:
                del versions[i]
            else:
                versions[i] = versions.get(i, -1) + 1
            changed.add(f"/app-{i:04d}")
        changed.add("/app-9999")  # an id that is not listed: a pod, say
        update(changed)
    assert whole.ids == [f"/app-{i:04d}" for i in sorted(versions)]
    versions.clear()
    update({f"/app-{i:04d}" for i in range(70)})
    assert whole.plain() == b'{"apps":[]}'


@pytest.mark.anyio
async def test_filtered_and_unfiltered_lists_agree_through_writes(
    api: httpx.AsyncClient, control: Control
) -> None:
    for i in range(6):
        r = await api.post("/v2/apps", json=_app(f"/f/{'ab'[i % 2]}-{i}", instances=0))
        assert r.status_code == 201, r.text
    for step in range(4):
        whole = json.loads(await _raw(api, [], "identity"))["apps"]
        for params in ([("id", "/f/a")], [("cmd", "600")], [("id", "/f/b")]):
            zipped = await _raw(api, params, "gzip")
            some = json.loads(gzip.decompress(zipped))["apps"]
            name, value = params[0]
            expected = [
                a for a in whole if value in (a["id"] if name == "id" else a.get("cmd") or "")
            ]
            assert some == expected, (step, params)
        assert (
            gzip.decompress(await _raw(api, [], "gzip"))
            == json.dumps({"apps": whole}, separators=(",", ":")).encode()
        )
        if step == 0:
            r = await api.put("/v2/apps/f/a-2?force=true", json=_app("/f/a-2", cmd="sleep 7"))
        elif step == 1:
            r = await api.delete("/v2/apps/f/a-0?force=true")
        else:
            r = await api.post("/v2/apps", json=_app(f"/f/a-{10 + step}", instances=0))
        assert r.status_code in (200, 201), r.text
        await converge(control)


def test_changed_apps_are_found_through_updates_creates_deletes_and_recreates() -> None:
    from pallet.api.render import _changed_apps, _Seen

    rng = random.Random(5)
    apps: dict[str, object] = {f"/a{i}": object() for i in range(30)}
    counts: dict[str, int] = dict.fromkeys(apps, 1)
    seen = _Seen(WholeListing(ListingPieces()))

    def look() -> tuple[list[str], list[Any], list[int | None]]:
        ids = list(apps)
        return ids, list(apps.values()), [counts.get(i) for i in ids]

    seen.ids, seen.held, seen.changes = look()
    for _ in range(300):
        before = {k: (apps[k], counts[k]) for k in apps}
        for _ in range(rng.choice([1, 1, 2, 4])):
            op = rng.random()
            key = f"/a{rng.randrange(45)}"
            if op < 0.3 and key in apps:  # delete (the record and its count go)
                del apps[key], counts[key]
            elif op < 0.5:  # create, or delete and create again: its count starts over
                apps.pop(key, None)
                apps[key] = object()
                counts[key] = 1
            elif op < 0.75 and key in apps:  # an update: a new record in the same place
                apps[key] = object()
                counts[key] += 1
            elif key in apps:  # a task of it changed
                counts[key] += 1
        ids, records, now = look()
        expected = {
            k
            for k in before.keys() | apps.keys()
            if before.get(k) != ((apps[k], counts[k]) if k in apps else None)
        }
        assert _changed_apps(seen, ids, records, now) == expected
        seen.ids, seen.held, seen.changes = ids, records, now
