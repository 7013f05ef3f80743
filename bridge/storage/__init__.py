"""Where finished calls are kept: the call store (SQLite or PostgreSQL) and its background writer."""
