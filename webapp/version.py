"""The release: shown by /ping, the OpenAPI document and the footer; pyproject.toml reads it too."""
VERSION = "0.10.0"
