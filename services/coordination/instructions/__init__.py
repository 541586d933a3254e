"""Instructions to banks and payment providers: query, stop-payment, freeze, extend, release, return."""
