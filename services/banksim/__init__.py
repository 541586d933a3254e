"""Institution simulator: banks and payment providers that hold accounts and answer Stopline's
instructions through the real interfaces (Kafka and signed webhooks)."""
