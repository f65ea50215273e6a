"""The `tocsin` command line: serve, migrate, configuration as code, events and incidents."""
