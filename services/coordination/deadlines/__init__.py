"""Deadlines and expiry: scheduled jobs that escalate overdue instructions and lapse holds on time."""
