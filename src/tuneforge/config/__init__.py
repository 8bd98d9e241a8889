"""One typed configuration for YAML, the CLI and the Web UI."""

from tuneforge.config.loader import RunConfig, load_config

__all__ = ["RunConfig", "load_config"]
