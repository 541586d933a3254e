"""The model's quality on the live path: ingest → scorer → coordination on simulated traffic."""
