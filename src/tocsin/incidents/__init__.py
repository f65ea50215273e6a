"""Incidents: what a human (or automation) must act on, with their timelines."""
