"""Auth: users and their career profiles, credentials, sessions, and the keys that sign tokens."""
