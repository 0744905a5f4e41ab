"""The fetcher against a real HTTP server: download, extract, executable, destPath, the
cache (shared downloads, eviction), and failures that name the URI."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from httpserve import serve
from pallet.agent.archives import ArchiveError, archive_kind, extract
from pallet.agent.fetcher import FetchCache, Fetcher, FetchError, target_name
from pallet.agent.users import agent_user
from pallet.model import FetchUri


def make_tgz(path: Path, files: dict[str, bytes], mode: int = 0o644) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    make_tgz(root / "app.tgz", {"app/run.sh": b"echo hi\n", "app/conf": b"x=1\n"}, 0o755)
    with zipfile.ZipFile(root / "lib.zip", "w") as zf:
        info = zipfile.ZipInfo("lib/tool")
        info.external_attr = 0o755 << 16
        zf.writestr(info, "#!/bin/sh\n")
    (root / "notes.txt.gz").write_bytes(gzip.compress(b"notes\n"))
    (root / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (root / "big.bin").write_bytes(os.urandom(64 << 10))
    return root


@pytest.fixture
def fetcher(tmp_path: Path) -> Fetcher:
    f = Fetcher(FetchCache(tmp_path / "cache", limit=100 << 10))
    yield f
    f.close()


def sandbox(tmp_path: Path, name: str = "sb") -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.tar", "tar"),
        ("a.TGZ", "tar"),
        ("a.tar.gz", "tar"),
        ("a.tbz2", "tar"),
        ("a.tar.xz", "tar"),
        ("a.zip", "zip"),
        ("a.txt.gz", "gz"),
        ("a.jar", None),
        ("tar", None),
    ],
)
def test_archive_kinds_by_name_as_mesos(name: str, kind: str | None) -> None:
    assert archive_kind(name) == kind


def test_download_extract_executable_and_dest_path(
    site: Path, fetcher: Fetcher, tmp_path: Path
) -> None:
    box = sandbox(tmp_path)
    with serve(site) as (url, hits):
        fetcher.fetch(
            (
                FetchUri(f"{url}/app.tgz"),
                FetchUri(f"{url}/lib.zip"),
                FetchUri(f"{url}/notes.txt.gz"),
                FetchUri(f"{url}/tool", executable=True, extract=True),
                FetchUri(f"{url}/app.tgz", extract=False, dest_path="keep/copy.tgz"),
            ),
            box,
            agent_user(),
        )
    assert (box / "app" / "run.sh").read_bytes() == b"echo hi\n"
    assert (box / "app.tgz").exists()  # the archive stays, as in Mesos
    assert os.access(box / "lib" / "tool", os.X_OK)
    assert (box / "notes.txt").read_bytes() == b"notes\n"
    assert os.access(box / "tool", os.X_OK) and (box / "tool").read_bytes().startswith(b"#!")
    assert (box / "keep" / "copy.tgz").read_bytes() == (site / "app.tgz").read_bytes()
    assert not (box / "keep" / "app").exists()
    assert "pallet fetcher: fetched" in (box / "stderr").read_text()
    assert hits["/app.tgz"] == 2


def test_a_missing_uri_fails_with_the_uri_and_the_answer(
    site: Path, fetcher: Fetcher, tmp_path: Path
) -> None:
    with serve(site) as (url, _), pytest.raises(FetchError) as info:
        fetcher.fetch((FetchUri(f"{url}/missing.tgz"),), sandbox(tmp_path), agent_user())
    assert str(info.value) == f"fetch {url}/missing.tgz: 404 File not found"


def test_unreachable_host_and_bad_scheme_and_file_uris(
    site: Path, fetcher: Fetcher, tmp_path: Path
) -> None:
    box = sandbox(tmp_path)
    with pytest.raises(FetchError, match=r"^fetch http://127.0.0.1:9/x: ConnectError"):
        fetcher.fetch((FetchUri("http://127.0.0.1:9/x"),), box, agent_user())
    with pytest.raises(FetchError, match="unsupported scheme 'ftp'"):
        fetcher.fetch((FetchUri("ftp://h/x"),), box, agent_user())
    fetcher.fetch((FetchUri(f"file://{site}/tool"), FetchUri(f"{site}/app.tgz")), box, agent_user())
    assert (box / "tool").exists() and (box / "app" / "conf").exists()
    with pytest.raises(FetchError, match="No such file or directory"):
        fetcher.fetch((FetchUri(f"file://{site}/nope"),), box, agent_user())
    with pytest.raises(FetchError, match="names no file; set destPath"):
        target_name(FetchUri("http://h/"))


def test_archives_cannot_write_outside_the_sandbox(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tgz"
    make_tgz(evil, {"../outside": b"x"})
    with pytest.raises(ArchiveError, match="refused"):
        extract(evil, sandbox(tmp_path, "a"))
    assert not (tmp_path / "outside").exists()
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tar:
        info = tarfile.TarInfo("escape")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(info)
        data = tarfile.TarInfo("escape/passwd")
        data.size = 1
        tar.addfile(data, io.BytesIO(b"x"))
    with pytest.raises(ArchiveError, match="refused"):
        extract(link, sandbox(tmp_path, "b"))


def test_the_cache_shares_concurrent_downloads_and_serves_later_tasks(
    site: Path, fetcher: Fetcher, tmp_path: Path
) -> None:
    errors: list[BaseException] = []

    def one(i: int, url: str) -> None:
        try:
            fetcher.fetch(
                (FetchUri(f"{url}/app.tgz", cache=True),), sandbox(tmp_path, f"t{i}"), agent_user()
            )
        except BaseException as e:
            errors.append(e)

    with serve(site, delay=0.3) as (url, hits):
        threads = [threading.Thread(target=one, args=(i, url)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        one(5, url)
    assert not errors
    assert hits["/app.tgz"] == 1  # five at once and one later: one download
    assert fetcher.cache.downloads == 1
    for i in range(6):
        assert (tmp_path / f"t{i}" / "app" / "run.sh").exists()
    assert "from the cache" in (tmp_path / "t5" / "stderr").read_text()


def test_the_cache_keeps_its_size_evicting_the_least_recently_used(
    site: Path, tmp_path: Path
) -> None:
    for i in range(3):
        (site / f"blob{i}").write_bytes(os.urandom(40 << 10))
    fetcher = Fetcher(FetchCache(tmp_path / "cache", limit=100 << 10))
    try:
        with serve(site) as (url, hits):
            for i, name in enumerate(["blob0", "blob1", "blob0", "blob2", "blob0", "big2"]):
                if name == "big2":
                    (site / name).write_bytes(os.urandom(200 << 10))
                fetcher.fetch(
                    (FetchUri(f"{url}/{name}", cache=True),),
                    sandbox(tmp_path, f"s{i}"),
                    agent_user(),
                )
        # blob1 was the least recently used when blob2 needed room; the file larger
        # than the whole cache was fetched but not kept
        assert hits["/blob0"] == 1 and hits["/blob1"] == 1 and hits["/blob2"] == 1
        assert fetcher.cache.used() <= 100 << 10
        names = sorted(p.name for p in (tmp_path / "cache").iterdir())
        assert len(names) == 2
        assert (tmp_path / "s5" / "big2").stat().st_size == 200 << 10
    finally:
        fetcher.close()
    # a new agent run finds the cache on disk
    again = FetchCache(tmp_path / "cache", limit=100 << 10)
    assert again.used() == 80 << 10
