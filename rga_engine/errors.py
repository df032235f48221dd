"""Errors shared across the engine, in a module that imports nothing of it.

:class:`ConfigError` lives here, not in :mod:`rga_engine.config`, so that the modules config
validates against (the method registry, the model builders) can raise it without importing config:
the dependency runs one way, config → methods → models.
"""


class ConfigError(ValueError):
    """A one-line, user-facing description of what is wrong with a preset."""
