"""The hash chain over the event log.

`hash = sha256(prev_hash || canonical bytes of the event)`, where the canonical bytes are
the stored columns joined by the ASCII unit separator. The separator cannot occur in any
column (`data` is JSON, which escapes control characters; the rest are numbers, names,
timestamps and traceparents), so the encoding is unambiguous. Because `seq` is hashed,
moving an event changes its hash just as editing it does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

import attrs

GENESIS: Final = "0" * 64
"""The `prev_hash` of seq 1."""


def event_hash(
    prev_hash: str,
    seq: int,
    job_id: int,
    event_type: str,
    version: int,
    at: str,
    data: str,
    trace: str | None,
) -> str:
    canonical = "\x1f".join(
        (prev_hash, str(seq), str(job_id), event_type, str(version), at, trace or "", data)
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


StoredRow = tuple[int, int, str, int, str, str, str | None, str, str]
"""(seq, job_id, type, version, at, data, trace, prev_hash, hash) as stored."""


@attrs.frozen(kw_only=True)
class ChainReport:
    """The outcome of walking the chain: `first_bad_seq` is None when it verifies."""

    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def verify(rows: Iterable[StoredRow]) -> ChainReport:
    """Walk stored rows in seq order and name the first one that breaks the chain.

    A gap in seq means events were removed; a row whose hash does not match its own
    contents was altered (or moved: seq is hashed); a row whose prev_hash does not match
    the previous row's hash means the rows around it were removed or reordered.
    """
    expected_seq = 1
    prev_hash = GENESIS
    count = 0
    for seq, job_id, event_type, version, at, data, trace, stored_prev, stored_hash in rows:
        if seq != expected_seq:
            return ChainReport(
                events=count,
                head_seq=expected_seq - 1,
                head_hash=prev_hash,
                first_bad_seq=expected_seq,
                problem=f"seq {expected_seq} is missing (next stored is {seq}): events removed",
            )
        actual = event_hash(stored_prev, seq, job_id, event_type, version, at, data, trace)
        if actual != stored_hash:
            return ChainReport(
                events=count,
                head_seq=seq - 1,
                head_hash=prev_hash,
                first_bad_seq=seq,
                problem=f"seq {seq}: contents do not match its stored hash: event altered",
            )
        if stored_prev != prev_hash:
            return ChainReport(
                events=count,
                head_seq=seq - 1,
                head_hash=prev_hash,
                first_bad_seq=seq,
                problem=(
                    f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}: "
                    "events removed, inserted or reordered"
                ),
            )
        prev_hash = stored_hash
        expected_seq += 1
        count += 1
    return ChainReport(events=count, head_seq=expected_seq - 1, head_hash=prev_hash)
