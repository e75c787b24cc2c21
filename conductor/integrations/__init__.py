"""conductor inside other frameworks' processes: ASGI applications (`asgi`, `embedded`) and
Django's Tasks framework (`django`)."""
