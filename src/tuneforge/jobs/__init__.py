"""Runs as jobs: a SQLite store and queue, a detached subprocess runner, and a scheduler that starts them in order."""
