"""Streaming features, defined once: the live scorer and model training both compute them here."""
