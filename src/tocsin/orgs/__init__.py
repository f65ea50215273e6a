"""The organisation: teams, users, services and their integrations."""
