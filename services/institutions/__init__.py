"""Institutions (banks, payment providers, telecoms) and their API credentials."""
