"""Observability: metrics, tracing and live terminal views - the only modules that import
OpenTelemetry or prometheus_client.
"""
