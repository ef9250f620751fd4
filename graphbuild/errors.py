"""The small exception hierarchy every hydrascope package raises."""

from __future__ import annotations

__all__ = ["HydrascopeError", "BundleError", "ConfigError", "RunFolderError", "ExportError"]


class HydrascopeError(Exception):
    """Base of every error hydrascope raises on purpose; the CLI prints it without a traceback."""


class BundleError(HydrascopeError):
    """The input bundle cannot be read: a required table or column is missing, or a file is unreadable."""


class ConfigError(HydrascopeError, ValueError):
    """A configuration value is outside what is allowed; the message names the value and the allowed range."""


class RunFolderError(HydrascopeError):
    """A run folder is missing a file the caller needs, or is not a hydrascope run folder."""


class ExportError(HydrascopeError):
    """An exporter could not write its output (server unreachable, package mismatch, ...)."""
