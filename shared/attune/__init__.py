"""Attune pack-workflow domain: configuration, database, packs, workflows, auth."""

__version__ = "0.1.0"
