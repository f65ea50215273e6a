"""Ingestion: the HTTP endpoints that accept events and the group-commit writer behind them."""
