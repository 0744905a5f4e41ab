"""Schemathesis over a running master's ``/v1/openapi.json``: generated requests for every
operation, counting answers by status and every 5xx; and every method a path does not
declare, checking that each 405 names the allowed ones (``Allow``); does I/O.

Used by ``pallet bench security`` against a secured cluster (with a token and without)
and by a short test against an in-process master.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pallet.api.limits import STREAM_PATHS

__all__ = ["FuzzResult", "MethodsResult", "fuzz", "undeclared_methods"]

_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")
_LONG_POLLS = frozenset({"/v1/agent/nodes/{node_id}/desired"})
"""Operations whose ``wait`` holds the answer up to a minute: sent without it, so they answer
at once (a held answer says nothing, and would outlast the request's timeout)."""
_KEEP = 10  # 5xx answers kept to show


@dataclass
class FuzzResult:
    cases: int = 0
    server_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    """Requests that got no answer (refused, reset, timed out)."""
    examples: list[str] = field(default_factory=list)
    """The first 5xx: method, path, status and the body's start."""
    no_answer: list[str] = field(default_factory=list)
    """The first requests that got no answer, and why."""
    refused: list[str] = field(default_factory=list)
    """The first 401s: with a token, each says why (a generated logout revoked it)."""
    operations: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "server_errors": self.server_errors,
            "transport_errors": self.transport_errors,
            "operations": self.operations,
            "seconds": round(self.seconds, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "examples": self.examples,
            "no_answer": self.no_answer,
            "refused": self.refused,
        }


@dataclass
class MethodsResult:
    requests: int = 0
    method_not_allowed: int = 0
    without_allow: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "405": self.method_not_allowed,
            "405_without_allow": len(self.without_allow),
            "examples": self.without_allow[:_KEEP],
        }


def fuzz(
    schema_doc: dict[str, Any],
    base_url: str,
    cases: int,
    *,
    headers: dict[str, str] | Callable[[], dict[str, str]] | None = None,
    session: Any = None,
    verify: str | bool = True,
    renew: Callable[[], None] | None = None,
    app: Any = None,
) -> FuzzResult:
    """About ``cases`` generated requests spread over every operation of ``schema_doc``,
        sent to ``base_url`` (through ``session``, a ``requests.Session``) or, with ``app``, to
        an ASGI app in process. ``headers`` may be a function, asked before each request (a
        token that expires is renewed); ``renew`` is called after a 401 (a generated logout
    revoked it). Passes over the operations repeat until enough were
        sent or a pass adds none (operations whose inputs are few run out)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    schema = (
        schemathesis.openapi.from_asgi("/v1/openapi.json", app)
        if app is not None
        else schemathesis.openapi.from_dict(schema_doc)
    )
    operations = [
        op
        for op in (r.ok() for r in schema.get_all_operations() if _ok(r))  # type: ignore[union-attr]
        if op.path not in STREAM_PATHS  # an answer that never ends says nothing
    ]
    result = FuzzResult(operations=len(operations))
    started = time.monotonic()
    per_operation = max(1, math.ceil(cases / max(1, len(operations))))
    while result.cases < cases:
        before = result.cases
        for operation in operations:
            if result.cases >= cases:
                break

            @settings(
                max_examples=per_operation,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.generate],
            )
            @given(operation.as_strategy())
            def send(case: Any) -> None:
                result.cases += 1
                if case.operation.path in _LONG_POLLS and case.query:
                    case.query.pop("wait", None)
                extra = headers() if callable(headers) else headers
                try:
                    if app is not None:
                        response = case.call(headers=extra)
                    else:
                        response = case.call(
                            base_url=base_url,
                            session=session,
                            headers=extra,
                            timeout=10,
                            verify=verify,
                        )
                except Exception as e:  # no answer is counted, not fatal
                    result.transport_errors += 1
                    if len(result.no_answer) < _KEEP:
                        result.no_answer.append(f"{case.method} {case.formatted_path}: {e}"[:300])
                    return
                result.statuses[response.status_code] += 1
                if response.status_code == 401:
                    if len(result.refused) < _KEEP:
                        result.refused.append(
                            f"{case.method} {case.formatted_path}: {response.text[:120]}"
                        )
                    if renew is not None:
                        renew()
                if response.status_code >= 500:
                    result.server_errors += 1
                    if len(result.examples) < _KEEP:
                        result.examples.append(
                            f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{response.text[:160]}"
                        )

            with contextlib.suppress(Exception):  # an unsatisfiable schema generates nothing
                send()
        if result.cases == before:
            break
    result.seconds = time.monotonic() - started
    return result


def _ok(outcome: Any) -> bool:
    try:
        outcome.ok()
    except Exception:  # an operation schemathesis cannot read is skipped
        return False
    return True


def undeclared_methods(
    schema_doc: dict[str, Any], send: Any, *, headers: dict[str, str] | None = None
) -> MethodsResult:
    """Every method of ``_METHODS`` a path of the schema does not declare, sent with its
    parameters filled (``send(method, path, headers) -> (status, headers)``): each 405
    must carry ``Allow``."""
    result = MethodsResult()
    for template, item in sorted(schema_doc.get("paths", {}).items()):
        declared = {m.upper() for m in item}
        path = re.sub(r"\{[^}]+\}", "x", template)
        for method in _METHODS:
            if method in declared:
                continue
            status, answer_headers = send(method, path, headers or {})
            result.requests += 1
            if status == 405:
                result.method_not_allowed += 1
                if not any(k.lower() == "allow" for k in answer_headers):
                    result.without_allow.append(f"{method} {path}")
    return result
