"""The whole police story, walked against a running `make run` through the public APIs."""
