"""The web application: JSON API, integration endpoints, health and metrics."""
