"""OTLP/HTTP receiver for GenAI telemetry: OTel GenAI (>= 1.37 and <= 1.36), OpenLLMetry and
OpenInference spans and log events → Event v1 on ``aiwatch.events``.

Entry points: :func:`collectors.otlp.server.serve` (``aiwatch collect otlp``) and
:func:`collectors.otlp.server.create_app` (tests, embedding).
"""
