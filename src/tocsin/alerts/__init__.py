"""Alerts: what monitoring told us, deduplicated per service."""
