"""Reading a Marathon app definition from a JSON or YAML file (or ``-`` for stdin); does I/O.

Every problem is a ``PalletError`` that starts ``app file NAME:`` and says where and
what to fix. Only the syntax and the top-level shape are checked here: the master
validates the fields and answers 422 with their paths.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from pallet.errors import PalletError

__all__ = ["AppFileError", "load_app_file"]

_EXAMPLE = '{"id": "/web", "cmd": "python3 -m http.server $PORT0", "cpus": 0.1, "mem": 64}'
_YAML_SUFFIXES = (".yaml", ".yml")


class AppFileError(PalletError):
    """An app file cannot be read or is not one app definition."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"app file {name}: {problem}")
        self.name = name
        self.problem = problem


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AppFileError(path, "no such file; give the path of a JSON or YAML app") from None
    except IsADirectoryError:
        raise AppFileError(path, "is a directory; give one JSON or YAML file") from None
    except PermissionError:
        raise AppFileError(path, "permission denied; check who may read it") from None
    except UnicodeDecodeError as exc:
        raise AppFileError(
            path, f"byte {exc.start} is not UTF-8; save the file as UTF-8 text"
        ) from None
    except OSError as exc:
        raise AppFileError(path, exc.strerror or str(exc)) from None


def _reject_constant(token: str) -> object:
    raise ValueError(f"{token} is not a JSON number")


def _parse_json(name: str, text: str) -> object:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise AppFileError(
            name, f"line {exc.lineno} column {exc.colno}: {exc.msg}; fix the JSON syntax"
        ) from None
    except ValueError as exc:
        raise AppFileError(name, f"{exc}; write a finite number") from None


def _parse_yaml(name: str, text: str) -> object:
    import yaml  # only YAML files pay for it

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise AppFileError(name, f"{where}{problem}; fix the YAML syntax") from None
    except yaml.YAMLError as exc:
        raise AppFileError(name, f"{exc}; fix the YAML syntax") from None


def _plain(name: str, value: object, path: str) -> Any:
    """YAML's extra types as JSON: dates become ISO text, keys strings; NaN is refused."""
    if isinstance(value, dict):
        return {
            str(k): _plain(name, v, f"{path}.{k}" if path else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_plain(name, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise AppFileError(name, f"{path or 'the app'}: {value} is not a number JSON allows")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def load_app_file(path: str) -> dict[str, Any]:
    """The app definition in ``path``: JSON for ``.json``, YAML for ``.yaml``/``.yml``,
    otherwise JSON when the text starts with ``{`` and YAML when it does not."""
    name = "<stdin>" if path == "-" else path
    text = _read_text(path)
    if not text.strip():
        raise AppFileError(name, f"is empty; write one Marathon app, such as {_EXAMPLE}")
    suffix = Path(path).suffix.lower()
    is_json = suffix == ".json" or (
        suffix not in _YAML_SUFFIXES and text.lstrip().startswith(("{", "["))
    )
    doc = _parse_json(name, text) if is_json else _parse_yaml(name, text)
    if isinstance(doc, list):
        raise AppFileError(
            name, f"holds a list of {len(doc)} items; an app file holds one app object"
        )
    if not isinstance(doc, dict):
        raise AppFileError(
            name,
            f"holds {type(doc).__name__} {doc!r:.40}; write one app object, such as {_EXAMPLE}",
        )
    return dict(_plain(name, doc, ""))
