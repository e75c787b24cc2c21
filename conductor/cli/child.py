"""A worker child of `conductor worker --processes P`: `python -m conductor.cli.child
PARENT_PID worker OPTIONS...`. The engine's process pool starts it; it runs the same
`worker` command as the parent, in this process.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def child_main(argv: Sequence[str]) -> None:
    """A child's entry point: `PARENT_PID worker ARGS...`."""
    from conductor.engine import signals

    signals.WORKER.install()  # before the imports: the pool may stop a child as it starts
    from conductor.cli.app import main
    from conductor.engine.processes import become_child

    become_child(int(argv[0]))
    main(list(argv[1:]))


if __name__ == "__main__":
    child_main(sys.argv[1:])
