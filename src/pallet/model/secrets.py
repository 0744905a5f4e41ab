"""Secret paths and a task's references to secrets (never their values); pure.

A secret lives at a path (``db/password``, DC/OS's form: segments of letters, digits,
``.``, ``_`` and ``-``, no empty, ``.`` or ``..`` segment). A task names the secrets it
needs with ``TaskSecret``: where the value goes (an environment variable, or a file
relative to its sandbox), never the value itself, so the launch spec, the desired set,
the store's task records and the agent's checkpoints hold references only; the agent
asks the master for the values of one task when it starts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pallet.model.errors import ValidationError
from pallet.model.paths import dest_path_problem
from pallet.model.wire import fields_of as _fields
from pallet.model.wire import read_obj as _obj
from pallet.model.wire import read_str as _str

__all__ = ["MAX_SECRET_BYTES", "MAX_SECRET_PATH", "TaskSecret", "check_secret_path"]

MAX_SECRET_PATH = 512
MAX_SECRET_SEGMENTS = 32
MAX_SECRET_BYTES = 256 * 1024
"""The largest value a secret may hold (DC/OS's store allowed about 1 MB; secrets are
passwords, keys and certificates, and every master holds them all)."""
_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_ENV_BAD = frozenset("=\x00")


def check_secret_path(path: object, field: str = "/path") -> str:
    """``path`` in its one stored form (no leading or trailing ``/``): a ``ValidationError``
    on ``field`` says what is wrong (``..``, an empty segment, a bad character)."""
    if not isinstance(path, str) or not path.strip("/"):
        raise ValidationError(field, "give a secret path such as db/password")
    if len(path) > MAX_SECRET_PATH:
        raise ValidationError(field, f"a secret path has at most {MAX_SECRET_PATH} characters")
    text = path[1:] if path.startswith("/") else path
    parts = text.split("/")
    if len(parts) > MAX_SECRET_SEGMENTS:
        raise ValidationError(field, f"a secret path has at most {MAX_SECRET_SEGMENTS} segments")
    for part in parts:
        if not part:
            raise ValidationError(field, f"{path!r} has an empty segment")
        if part in (".", ".."):
            raise ValidationError(field, f"{path!r} has a {part!r} segment")
        if not set(part) <= _CHARS:
            raise ValidationError(
                field, f"segment {part!r} must be letters, digits, '.', '_' or '-'"
            )
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class TaskSecret:
    """One secret a task gets: ``name`` is the app's (or job's) name for it, ``source``
    its path in the store; delivered as the environment variable ``env`` or as the file
    ``file`` (relative to the sandbox, mode 0400, owned by the task's user)."""

    name: str
    source: str
    env: str | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "\x00" in self.name:
            raise ValidationError("/secrets", "a secret's name must be a non-empty string")
        check_secret_path(self.source, f"/secrets/{self.name}/source")
        if (self.env is None) == (self.file is None):
            raise ValidationError(f"/secrets/{self.name}", "goes to one env variable or one file")
        if self.env is not None and (not self.env or set(self.env) & _ENV_BAD):
            raise ValidationError(f"/env/{self.env}", "a variable name has no '=' or NUL")
        if self.file is not None and (problem := dest_path_problem(self.file)):
            raise ValidationError(f"/secrets/{self.name}/containerPath", problem)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "source": self.source}
        if self.env is not None:
            doc["env"] = self.env
        if self.file is not None:
            doc["file"] = self.file
        return doc

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> TaskSecret:
        doc = _obj(raw, path, _fields(cls))
        env, file = doc.get("env"), doc.get("file")
        return cls(
            name=_str(doc.get("name"), f"{path}/name", 255),
            source=_str(doc.get("source"), f"{path}/source", MAX_SECRET_PATH),
            env=None if env is None else _str(env, f"{path}/env", 255),
            file=None if file is None else _str(file, f"{path}/file", 4096),
        )
