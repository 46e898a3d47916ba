"""Accounts: staff members and patients. Sign-in, sessions and roles build on these models."""

__all__: list[str] = []
