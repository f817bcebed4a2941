"""Database engine, sessions and shared column types."""
