"""Query parameters of ``/v2``: booleans and ``embed``, read the way Marathon reads them; pure.

Marathon (JAX-RS) reads a boolean parameter as ``Boolean.valueOf``: ``true`` in any
case is true, anything else false, so the Python client's ``force=True`` works.
``embed`` values are resolved as in ``InfoEmbedResolver``: the ``app.``, ``apps.``
or ``group.apps.`` prefix is optional and unknown values are ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = [
    "INDEX_EMBEDS",
    "SHOW_EMBEDS",
    "AppEmbed",
    "parse_bool",
    "parse_embed",
]


class AppEmbed(enum.StrEnum):
    TASKS = "tasks"
    DEPLOYMENTS = "deployments"
    READINESS = "readiness"
    LAST_TASK_FAILURE = "lastTaskFailure"
    COUNTS = "counts"
    TASK_STATS = "taskStats"


_PREFIXES = ("group.apps.", "apps.", "app.")
_EXPANSIONS: dict[str, frozenset[AppEmbed]] = {
    # Embedding tasks also embeds deployments (deprecated behaviour Marathon keeps).
    "tasks": frozenset({AppEmbed.TASKS, AppEmbed.DEPLOYMENTS}),
    "failures": frozenset({AppEmbed.TASKS, AppEmbed.LAST_TASK_FAILURE, AppEmbed.DEPLOYMENTS}),
    "deployments": frozenset({AppEmbed.DEPLOYMENTS}),
    "readiness": frozenset({AppEmbed.READINESS}),
    "lastTaskFailure": frozenset({AppEmbed.LAST_TASK_FAILURE}),
    "counts": frozenset({AppEmbed.COUNTS}),
    "taskStats": frozenset({AppEmbed.TASK_STATS}),
}

# GET /v2/apps always embeds counts and deployments; GET /v2/apps/{id} also tasks and
# the last task failure (AppsResource.index / show).
INDEX_EMBEDS = frozenset({AppEmbed.COUNTS, AppEmbed.DEPLOYMENTS})
SHOW_EMBEDS = INDEX_EMBEDS | {AppEmbed.TASKS, AppEmbed.LAST_TASK_FAILURE}


def parse_bool(value: str | None, default: bool = False) -> bool:
    """A boolean query parameter: absent -> ``default``; ``true`` in any case -> True."""
    return default if value is None else value.strip().lower() == "true"


def parse_embed(
    values: Iterable[str], always: frozenset[AppEmbed] = frozenset()
) -> frozenset[AppEmbed]:
    """The app embeds asked for by repeated ``embed`` parameters, plus ``always``."""
    result = set(always)
    for value in values:
        prefix = next((p for p in _PREFIXES if value.startswith(p)), "")
        result |= _EXPANSIONS.get(value[len(prefix) :], frozenset())
    return frozenset(result)
