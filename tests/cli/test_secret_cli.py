"""``pallet secret`` against a real master with a secrets key: values from --value, --file
and stdin, --json, names-only listings, and bad input as one line with exit 2."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.auth.secretbox import KEY_ENV, new_key_line
from pallet.bench.cluster import free_port, running_master

from .conftest import Run


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real master whose secrets key comes from the environment (as the README says)."""
    before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = new_key_line()
    try:
        with running_master(tmp_path_factory.mktemp("master"), free_port()) as url:
            yield url
    finally:
        if before is None:
            del os.environ[KEY_ENV]
        else:
            os.environ[KEY_ENV] = before


def test_create_show_update_list_remove(
    pallet: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = pallet("secret", "create", "db/password", "--value", "hunter2")
    assert r.code == 0 and "Created secret db/password" in r.out, r.err
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN KEY-----\nabc\n")
    assert pallet("secret", "create", "/web/tls.key", "--file", str(key)).code == 0
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from-stdin")))
    r = pallet("secret", "create", "db/user", "--json")
    assert r.code == 0 and json.loads(r.out) == {"path": "db/user", "created": True}
    assert pallet("secret", "show", "db/password").out == "hunter2"
    assert pallet("secret", "show", "web/tls.key").out == key.read_text()
    doc = json.loads(pallet("secret", "show", "db/user", "--json").out)
    assert doc["value"] == "from-stdin" and doc["path"] == "db/user"
    assert pallet("secret", "update", "db/password", "--value", "v2").code == 0
    assert pallet("secret", "show", "db/password").out == "v2"
    r = pallet("secret", "list", "--json")
    assert json.loads(r.out) == ["db/password", "db/user", "web/tls.key"]
    r = pallet("secret", "list")
    assert "db/password" in r.out and "v2" not in r.out and "hunter2" not in r.out
    assert json.loads(pallet("secret", "list", "db", "--json").out) == ["password", "user"]
    assert pallet("secret", "remove", "db/user").code == 0
    r = pallet("secret", "show", "db/user")
    assert r.code == 2 and "db/user does not exist" in r.err and r.err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("create", "db/../etc", "--value", "x"), "'..' segment"),
        (("create", "db//pw", "--value", "x"), "empty segment"),
        (("create", "db/p w", "--value", "x"), "letters, digits"),
        (("create", "db/pw", "--value", "x", "--file", "/etc/hostname"), "--file"),
        (("create", "db/pw", "--file", "/nonexistent/file"), "cannot read"),
        (("create", "", "--value", "x"), "PATH"),
        (("show", "db/none"), "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(pallet: Run, args: tuple[str, ...], words: str) -> None:
    r = pallet("secret", *args)
    assert r.code == 2, (r.out, r.err)
    assert words in r.err and r.err.count("\n") == 1 and "Traceback" not in r.err
    for made in ("etc", "db/etc", "db/pw", "pw"):  # nothing was made by a refused command
        assert pallet("secret", "show", made).code == 2
