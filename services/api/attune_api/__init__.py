"""Attune HTTP API (FastAPI)."""
