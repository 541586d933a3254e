"""The shared kit every Stopline service is built from: settings, logging, metrics, DB, auth, errors."""
