"""The hash-chained audit log every service records its actions in (one chain, one table)."""
