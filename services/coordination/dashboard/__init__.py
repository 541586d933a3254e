"""The day's figures: alerts, cases and amounts, times to stop-payment, institutions' response times."""
