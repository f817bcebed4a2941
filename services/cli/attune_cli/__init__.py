"""The `attune` command: server commands (api, worker, db, user, validate) and the API client."""
