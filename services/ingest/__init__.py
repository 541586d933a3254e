"""Ingest API: institutions post batches of events; each is validated, de-duplicated and produced to Kafka."""
