"""Tocsin: self-hosted incident-response automation."""

__version__ = "0.1.0"
