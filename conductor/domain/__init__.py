"""The pure core: events, states, decisions, backoff, clock, errors, settings and the task
registry. No I/O: everything here is a function of its arguments.
"""
