"""Delivery of warnings over signed HTTP channels, with retries, a dead-letter state and receipts."""
