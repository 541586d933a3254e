"""Warnings to likely victims: one per scam episode and person, with a one-time answer link."""
