"""Benchmarks (`make bench`): the orchestrator (`python -m deploy.bench`) and one load generator per path."""
