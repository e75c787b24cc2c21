"""The actor engine that runs jobs: Supervisor, Queue, Scheduler, Workers and the Writer.

See docs/architecture.md ("Engine") for how messages flow; `conductor.engine.runtime`
starts and stops it.
"""
