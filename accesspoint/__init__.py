"""Messaging: SBDH, AS4 protocol core, pipelines, store, web and CLI (the top layer)."""

__version__ = "0.1.0"
