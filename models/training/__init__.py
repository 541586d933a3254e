"""Offline training tools: simulated traffic to a feature table, training, evaluation, reports, feedback
labels. The scorer never imports them (tests/models/test_layout.py)."""
