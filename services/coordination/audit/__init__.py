"""The append-only, hash-chained audit log of every action, and its verification."""
