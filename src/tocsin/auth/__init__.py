"""Authentication (passwords, API tokens) and role checks."""
