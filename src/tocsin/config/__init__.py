"""Configuration as code: a directory of YAML files describing the organisation."""
