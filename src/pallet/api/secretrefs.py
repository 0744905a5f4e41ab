"""Checking the secrets an app or job names before it is stored: the caller may read each
(403 otherwise, before anything is said about whether it exists) and each exists (422
naming the field otherwise); does I/O (reads the secret store).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from pallet.api.context import context
from pallet.api.guard import permissions_of
from pallet.api.marathon import MarathonApiError, Violation, not_valid
from pallet.auth.perms import Action
from pallet.model.jobs import JobSpec
from pallet.model.secrets import check_secret_path

__all__ = ["check_job_secrets", "check_secret_refs"]


async def check_secret_refs(request: Request, refs: Iterable[tuple[str, str, str]]) -> None:
    """``refs``: (field path of the source, secret name, source). Raises a 403 if the
    caller may not read one of them, a 422 naming the fields of those that do not exist
    (or of all, when this master has no secrets key)."""
    refs = list(refs)
    if not refs:
        return
    perms = permissions_of(request.scope)
    for _, name, source in refs:
        path = check_secret_path(source, "/secrets")
        if not perms.may("secret", Action.READ, path):
            raise MarathonApiError(
                403, {"message": f"may not read secret {path} (named {name!r} here)"}
            )
    store = context(request).secrets
    if store is None:
        raise not_valid(
            [
                Violation(
                    field,
                    "secrets are off on this master: start it with --secrets-key-file "
                    "(pallet up does)",
                )
                for field, _, _ in refs
            ]
        )
    missing = [
        Violation(field, f"secret {check_secret_path(source)} does not exist")
        for field, _, source in refs
        if not await store.exists(source)
    ]
    if missing:
        raise not_valid(missing)


async def check_job_secrets(request: Request, job: JobSpec) -> None:
    """``check_secret_refs`` for the secrets a Metronome job's runs get."""
    await check_secret_refs(
        request,
        ((f"/run/secrets/{r.name}/source", r.name, r.source) for r in job.run.secrets),
    )
