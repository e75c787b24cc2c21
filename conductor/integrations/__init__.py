"""conductor inside other frameworks' processes: ASGI applications (`asgi`), Django."""
