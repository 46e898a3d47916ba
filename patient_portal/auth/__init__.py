"""Authentication: passwords, second factors, SMS codes, sessions, API tokens and rate limits."""
