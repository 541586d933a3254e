"""Citizen warnings (预警劝阻): decide, render, deliver with receipts and retries, take answers, escalate."""
