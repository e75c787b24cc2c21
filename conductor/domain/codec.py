"""Canonical JSON for stored events and payloads: one encoder and one decoder, tuned.

Serialisation is deliberately boring: `data` is compact JSON with sorted keys, so the same
event always has the same bytes and the hash chain can be recomputed from stored columns.
These two functions are what every event and payload goes through, so they are built for
speed without changing a byte of what `json` would produce.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final


def _canonical_encoder() -> Callable[[Any], str]:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)`, built once.

    `json.dumps` with arguments builds a `JSONEncoder` per call, and even a kept encoder's
    `encode` builds the C iterator (`c_make_encoder`) anew each time; together they were
    most of the cost of encoding a small event or payload. This builds the C iterator once
    with the same settings and no cycle check (`markers` None): what is encoded here is
    flat event fields or a payload just parsed from JSON, and a cyclic value passed in
    through the Python API ends in `RecursionError` instead of `ValueError` (refused as
    nesting too deeply either way). The same text for every other input
    (tests/property/test_canonical_json.py). Without the C accelerator, the plain encoder.
    """
    from json import encoder

    plain = json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    make_chunks = getattr(encoder, "c_make_encoder", None)  # untyped in typeshed
    if make_chunks is None:  # pragma: no cover - CPython always has it
        return plain.encode
    chunks = make_chunks(
        None, plain.default, encoder.encode_basestring, None, ":", ",", True, False, False
    )
    return lambda value: "".join(chunks(value, 0))


canonical_json: Final = _canonical_encoder()
"""Canonical JSON: keys sorted, no spaces, UTF-8 kept, no NaN or infinity. Event `data` and
normalised payloads are written with it, so equal values always give the same bytes."""


_Scanner = Callable[[str, int], tuple[Any, int]]
_scan_once: Final[_Scanner] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""The scanner `json.loads` runs (the C one where available), for `loads` to call directly."""


def loads(text: str) -> Any:
    """`json.loads(text)`: the same value, or the same error, for any input, but cheaper
    for the compact JSON that `data` holds (decoding runs once per event in a replay).

    `json.loads` skips leading whitespace, scans one value with `_scan_once`, skips trailing
    whitespace and fails on anything left. When the scan from index 0 succeeds and ends at
    the end of the text there was no whitespace to skip and nothing left, so its value is
    what `json.loads` returns; in every other case `json.loads` itself runs.
    """
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, TypeError):
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value
