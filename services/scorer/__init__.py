"""Scorer: stateful stream processing of institution events into alerts."""
