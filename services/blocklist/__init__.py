"""The fraud-number blocklist (诈骗电话拦截封堵): proposals, review, publication, expiry, appeal."""
