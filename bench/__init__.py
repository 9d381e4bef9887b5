"""Benchmarks: ``.venv/bin/python bench/<name>.py`` from the repo root (see each script's --help)."""
