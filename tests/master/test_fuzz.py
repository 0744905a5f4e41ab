"""Schemathesis over a real master's ``/v1/openapi.json``: a hundred and fifty generated
requests get no 5xx, and every 405 names the allowed methods (``bench.fuzz``; ``pallet
bench security`` runs 20,000 against a secured cluster)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pallet.bench.cluster import free_port, running_master
from pallet.bench.fuzz import fuzz, undeclared_methods

pytest.importorskip("schemathesis", reason="the test extra installs schemathesis")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from pallet.auth.secretbox import new_key_line

    home = tmp_path_factory.mktemp("fuzz")
    key = home / "secrets.key"  # with secrets on (off, their routes answer 503 on purpose)
    key.write_text(new_key_line() + "\n")
    key.chmod(0o600)
    with running_master(home, free_port(), extra=("--secrets-key-file", str(key))) as url:
        yield url


def test_generated_requests_get_no_server_error(master: str) -> None:
    import requests

    doc = httpx.get(f"{master}/v1/openapi.json", timeout=30).json()
    with requests.Session() as session:
        result = fuzz(doc, master, 150, session=session)
    assert result.cases >= 120 and result.operations > 50
    assert sum("requestBody" in op for item in doc["paths"].values() for op in item.values()) > 20
    assert result.server_errors == 0, result.examples
    assert result.transport_errors == 0, result.no_answer
    assert sum(n for status, n in result.statuses.items() if status < 300) > 0


def test_every_405_names_the_allowed_methods(master: str) -> None:
    doc = httpx.get(f"{master}/v1/openapi.json", timeout=30).json()
    with httpx.Client(base_url=master, timeout=30) as http:

        def send(method: str, path: str, headers: dict[str, str]) -> tuple[int, list[str]]:
            r = http.request(method, path, headers=headers)
            return r.status_code, list(r.headers)

        result = undeclared_methods(doc, send)
    assert result.method_not_allowed > 100
    assert result.without_allow == []
