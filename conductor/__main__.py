"""`python -m conductor` runs the CLI."""

from conductor.cli import main

main()
