"""Settings of the OTLP receiver: part of the one settings object, re-exported here for the collector."""

from schemas.settings import OtlpSettings

__all__ = ["OtlpSettings"]
