"""Recovery: email verification, password reset and password change."""
