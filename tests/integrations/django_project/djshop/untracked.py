"""A module no worker may import: it is in no tasks module nor TASK_MODULES. Importing it
leaves a marker file, so a test can prove a payload naming it imported nothing."""

import os
from pathlib import Path

Path(os.environ.get("TEST_MARKER", "imported.marker")).write_text("imported")


def boom() -> None:
    raise AssertionError("never run")
