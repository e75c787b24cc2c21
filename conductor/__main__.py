"""`python -m conductor` runs the CLI, as the `conductor` script does."""

from conductor.cli.app import run

run()
