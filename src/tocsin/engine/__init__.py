"""The durable engine: deferred work as rows, claimed by any node."""
