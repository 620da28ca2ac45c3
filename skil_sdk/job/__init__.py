"""A job's setup: the request a user makes, the checks, and the typed spec it becomes."""
