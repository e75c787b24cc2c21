"""Payload fields hidden on screen and in the API, as tasks declare them.

`@task("signup", redact=("password", "card.number"))` names fields of that task's
payloads; the dashboard shows `"[redacted]"` in their place wherever a payload appears
(a job, its `enqueued` event, a schedule). A plain name matches that key at any depth; a
dotted path matches from the top. Only tasks registered in the dashboard's process are
known (`conductor dashboard --app module`): the ledger keeps payloads as enqueued.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from conductor.domain.registry import REGISTRY

MASK: Final = "[redacted]"


def fields_of(task: str) -> tuple[str, ...]:
    spec = REGISTRY.get(task)
    return () if spec is None else spec.redact


def payload(task: str, text: str) -> Any:
    """The stored payload `text` decoded, with the task's redacted fields masked."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return redact(value, fields_of(task))


def redact(value: Any, fields: Sequence[str]) -> Any:
    """`value` with every field named by `fields` replaced by `MASK`."""
    if not fields:
        return value
    names = {f for f in fields if "." not in f}
    paths = [tuple(f.split(".")) for f in fields if "." in f]
    return _walk(value, names, paths, ())


def _walk(value: Any, names: set[str], paths: list[tuple[str, ...]], at: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        shown = {}
        for key, item in value.items():
            here = (*at, str(key))
            if key in names or here in paths:
                shown[key] = MASK
            else:
                shown[key] = _walk(item, names, paths, here)
        return shown
    if isinstance(value, list):
        return [_walk(item, names, paths, at) for item in value]
    return value
