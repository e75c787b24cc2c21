"""Read models folded from the event log: pure functions, no I/O, no clock.

The ledger applies them inside the append transaction; `conductor replay` rebuilds them
from seq 1. See `projections.base` for the contract.
"""
