"""The secret store over a real memory store: sealed at rest with the path bound in,
create/update/delete semantics, listing below a path, and rotation to a new key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from pallet.auth.secretbox import SealError, SecretBox, new_key_line
from pallet.auth.secretstore import SECRETS_PREFIX, SecretStore
from pallet.model import ValidationError
from pallet.store import Store, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = await open_store("memory://")
    yield s
    await s.close()


async def test_values_are_sealed_and_bound_to_their_path(store: Store) -> None:
    box = SecretBox.from_text(new_key_line())
    secrets = SecretStore(store, box, clock=lambda: 1000.0)
    assert await secrets.create("db/password", "hunter2", "admin", "prod db")
    assert not await secrets.create("/db/password", "other", "admin")  # the same path
    assert await secrets.value("db/password") == "hunter2"
    kv = await store.get(SECRETS_PREFIX + "db/password")
    assert kv is not None and b"hunter2" not in kv.value
    info = await secrets.info("db/password")
    assert info is not None and (info.author, info.created, info.description) == (
        "admin",
        1000.0,
        "prod db",
    )
    # a sealed value moved to another path does not open there
    await store.put(SECRETS_PREFIX + "web/key", kv.value)
    with pytest.raises(SealError):
        await secrets.value("web/key")


async def test_update_delete_exists_and_listing_below_a_path(store: Store) -> None:
    secrets = SecretStore(store, SecretBox.from_text(new_key_line()))
    assert not await secrets.update("db/password", "x", "admin")  # nothing to update
    for path in ("db/password", "db/user", "dbx/a", "web/key"):
        assert await secrets.create(path, path.upper(), "admin")
    assert await secrets.update("db/password", "v2", "bob")
    assert await secrets.value("db/password") == "v2"
    info = await secrets.info("db/password")
    assert info is not None and info.author == "bob"
    assert await secrets.paths() == ["db/password", "db/user", "dbx/a", "web/key"]
    assert await secrets.paths("db") == ["db/password", "db/user"]  # not dbx
    assert await secrets.paths("db/password") == ["db/password"]
    assert await secrets.delete("db/user") and not await secrets.delete("db/user")
    assert not await secrets.exists("db/user") and await secrets.exists("web/key")
    assert await secrets.value("db/user") is None


async def test_bad_paths_store_nothing(store: Store) -> None:
    secrets = SecretStore(store, SecretBox.from_text(new_key_line()))
    for path in ("db/../etc", "db//x", "", "a b"):
        with pytest.raises(ValidationError):
            await secrets.create(path, "x", "admin")
    assert (await store.list(SECRETS_PREFIX))[0] == []


async def test_rotation_seals_every_value_again_with_the_newest_key(store: Store) -> None:
    old_line = new_key_line()
    old = SecretStore(store, SecretBox.from_text(old_line))
    await old.create("db/password", "hunter2", "admin")
    await old.create("web/key", "k", "admin")
    new_line = new_key_line()
    rotated = SecretStore(store, SecretBox.from_text(f"{new_line}\n{old_line}"))
    assert await rotated.value("db/password") == "hunter2"  # the old key still opens it
    assert await rotated.reseal() == 2
    assert await rotated.reseal() == 0
    only_new = SecretStore(store, SecretBox.from_text(new_line))  # the old line can go
    assert await only_new.value("db/password") == "hunter2"
    assert await only_new.value("web/key") == "k"
    kv = await store.get(SECRETS_PREFIX + "db/password")
    assert kv is not None
    assert json.loads(kv.value)["sealed"].split(".")[1] == new_line.split(":")[0]
    # a value whose key is gone is left as it is, and says so when read
    stranger = SecretStore(store, SecretBox.from_text(new_key_line()))
    assert await stranger.reseal() == 0
    with pytest.raises(SealError, match="not in the key file"):
        await stranger.value("db/password")
