"""Delivery to institutions: the transactional outbox, its relay to Kafka and to signed webhooks."""
