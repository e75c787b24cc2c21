"""Payloads: the JSON object a job is enqueued with, checked before anything is written.

A payload names its task and carries the handler's keyword arguments. It is refused,
naming what is wrong, when it is not a JSON object, names no task or an empty one, gives
a key twice (at any depth: JSON parsers silently keep the last), holds an integer too long
to convert, or is over the size cap.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import attrs

from conductor.domain.codec import canonical_json
from conductor.domain.errors import InvalidInput


@attrs.frozen(kw_only=True)
class Payload:
    """A validated payload: its task name and its canonical JSON text."""

    task: str
    text: str


def _reject_constant(name: str) -> Any:
    raise InvalidInput(f"invalid payload: {name} is not JSON; expected finite numbers")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members as a dict, refusing a key given twice (at any depth).

    `json.loads` keeps the last of duplicate keys, so `{"task": "noop", "task": "fail"}`
    would silently run `fail`: what was meant is unknowable, so it is refused."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput(
                    f"invalid payload: key {json.dumps(key, ensure_ascii=False)} appears "
                    "more than once in an object; expected each key once"
                )
            seen.add(key)
    return value


def _check_task(value: dict[str, Any]) -> str:
    task = value.get("task")
    if not isinstance(task, str):
        raise InvalidInput(
            'invalid payload: no "task" string; expected an object naming its task, '
            'like {"task": "send_email", ...}'
        )
    if not task.strip():
        raise InvalidInput(
            f'invalid payload: the "task" name {json.dumps(task)} is empty; '
            'expected a task name, like {"task": "send_email", ...}'
        )
    return task


_TOO_MANY_DIGITS = (
    f"invalid payload: an integer has more than {sys.get_int_max_str_digits()} digits; "
    "expected smaller numbers (send a very long number as a string)"
)


def parse_payload(raw: str | bytes | dict[str, Any], max_bytes: int) -> Payload:
    """Validate a payload given as JSON text or a dict, and normalise it.

    It must be a JSON object no larger than `max_bytes`, with no key twice in any object,
    whose `task` is a non-empty string. The task is a name looked up in the worker's
    registry, never imported.
    """
    if isinstance(raw, dict):
        value: Any = raw
    else:
        size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
        if size > max_bytes:
            raise InvalidInput(
                f"invalid payload: {size} bytes is over the {max_bytes}-byte limit; "
                "expected a smaller JSON object (store large data elsewhere and pass a reference)"
            )
        try:
            value = json.loads(raw, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as e:
            raise InvalidInput(
                f"invalid payload JSON: {e.msg} at line {e.lineno} column {e.colno}; "
                "expected a JSON object"
            ) from None
        except RecursionError:
            raise InvalidInput(
                "invalid payload: JSON nests too deeply; expected a flatter object"
            ) from None
        except UnicodeDecodeError:
            raise InvalidInput("invalid payload: not UTF-8; expected UTF-8 JSON text") from None
        except ValueError:
            # What is left is Python's guard against quadratic int parsing (CVE-2020-10735).
            raise InvalidInput(_TOO_MANY_DIGITS) from None
    if not isinstance(value, dict):
        raise InvalidInput(
            f"invalid payload: got a JSON {type(value).__name__}, expected an object "
            'like {"task": "send_email", ...}'
        )
    task = _check_task(value)
    try:
        text = canonical_json(value)
        text.encode()
    except RecursionError:
        raise InvalidInput(
            "invalid payload: JSON nests too deeply; expected a flatter object"
        ) from None
    except ValueError as e:
        if "integer string conversion" in str(e):
            raise InvalidInput(_TOO_MANY_DIGITS) from None
        raise InvalidInput(f"invalid payload: {e}; expected plain JSON values") from None
    except TypeError as e:
        raise InvalidInput(f"invalid payload: {e}; expected plain JSON values") from None
    if len(text.encode()) > max_bytes:
        raise InvalidInput(
            f"invalid payload: over the {max_bytes}-byte limit; expected a smaller JSON object"
        )
    return Payload(task=task, text=text)
