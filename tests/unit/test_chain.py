from __future__ import annotations

from conductor.ledger.chain import GENESIS, StoredRow, event_hash, verify


def chain_of(n: int) -> list[StoredRow]:
    rows: list[StoredRow] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        data = f'{{"attempt":{seq}}}'
        digest = event_hash(prev, seq, seq, "completed", 1, "at", data, None)
        rows.append((seq, seq, "completed", 1, "at", data, None, prev, digest))
        prev = digest
    return rows


def test_an_intact_chain_verifies_and_reports_its_head() -> None:
    rows = chain_of(5)
    report = verify(rows)
    assert report.ok
    assert (report.events, report.head_seq, report.head_hash) == (5, 5, rows[-1][8])


def test_an_edited_event_is_named_by_its_seq() -> None:
    rows = chain_of(5)
    seq, job, typ, ver, at, _, trace, prev, digest = rows[2]
    rows[2] = (seq, job, typ, ver, at, '{"attempt":99}', trace, prev, digest)
    report = verify(rows)
    assert report.first_bad_seq == 3
    assert "altered" in (report.problem or "")


def test_a_removed_event_is_named_by_the_missing_seq() -> None:
    rows = chain_of(5)
    del rows[1]
    assert verify(rows).first_bad_seq == 2


def test_swapped_events_are_caught_at_the_first_moved_seq() -> None:
    rows = chain_of(5)
    a, b = rows[1], rows[3]
    rows[1] = (2, *b[1:])
    rows[3] = (4, *a[1:])
    assert verify(rows).first_bad_seq == 2


def test_an_edit_with_a_recomputed_hash_is_caught_at_the_next_event() -> None:
    rows = chain_of(5)
    seq, job, typ, ver, at, _, trace, prev, _ = rows[2]
    forged = event_hash(prev, seq, job, typ, ver, at, '{"attempt":99}', trace)
    rows[2] = (seq, job, typ, ver, at, '{"attempt":99}', trace, prev, forged)
    report = verify(rows)
    assert report.first_bad_seq == 4
    assert "prev_hash" in (report.problem or "")


def test_an_empty_log_verifies() -> None:
    assert verify([]).ok
