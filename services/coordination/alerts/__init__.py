"""Alerts received from the scorer and their triage."""
