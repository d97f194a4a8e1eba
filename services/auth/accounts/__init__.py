"""Accounts: register, log in, refresh, log out, my profile, public profiles, the JWKS."""
