"""Task results: a handler's return value as the JSON text its `completed` event stores.

JSON only (never pickle: a result is read back by other processes and hosts, and
unpickling runs code), canonical like every stored value, and capped: the text lives in
the hash-chained log for good and is read by `history` and every replay, so it is meant
for a summary (ids, counts, a URL), not for bulk output. What does not fit fails the
attempt with an error naming the type or the cap; it is not retried, since the same code
returns the same kind of value again (an operator's `conductor retry` still can).
"""

from __future__ import annotations

from typing import Any, Final

from conductor.domain.codec import canonical_json, loads
from conductor.domain.errors import ResultNotJSON, ResultTooLarge

DEFAULT_MAX_RESULT_BYTES: Final = 64 * 1024
"""64 KiB: far above a summary, far below what would make a group commit of hundreds of
completions, a job's history or a replay heavy; bulk output belongs in a store of its
own, with its address as the result."""


def encode(value: Any, cap: int) -> str | None:
    """The canonical JSON text of a return value; None for None. Raises `ResultNotJSON`
    or `ResultTooLarge` (at most `cap` bytes of UTF-8)."""
    if value is None:
        return None
    try:
        text = canonical_json(value)
    except (TypeError, ValueError, RecursionError) as e:
        raise ResultNotJSON(
            f"the return value ({type(value).__name__}) is not JSON: {e}; expected None, "
            "str, int, float, bool, or lists and dicts of them (no pickle)"
        ) from None
    try:
        size = len(text) if text.isascii() else len(text.encode())
    except UnicodeEncodeError as e:  # a lone surrogate: no UTF-8, so no database takes it
        raise ResultNotJSON(
            f"the return value holds a string that is not valid Unicode ({e.reason} at "
            f"{e.start}); expected text that encodes as UTF-8"
        ) from None
    if size > cap:
        raise ResultTooLarge(
            f"the return value is {size} bytes of JSON, over the result cap of {cap} bytes "
            "(CONDUCTOR_MAX_RESULT_BYTES); expected a smaller value, e.g. where the data "
            "was stored"
        )
    return text


def decode(text: str | None) -> Any:
    """The value a stored result holds (None for none)."""
    return None if text is None else loads(text)
