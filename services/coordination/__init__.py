"""Coordination service: alerts, and (later) cases and instructions to institutions."""
