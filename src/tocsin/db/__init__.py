"""Storage: one SQLAlchemy model registry and engine factory for SQLite and PostgreSQL."""
