"""Who may do what: roles, API keys, and the principal a request acts as."""
