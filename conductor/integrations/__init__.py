"""Integrations of conductor with web frameworks: Django's Tasks framework, ASGI."""
