"""Officers' console sessions, kept where an institution user's are (coordination's database), so that a
sign-out or an administrator ends one at once for every console instance."""
