"""The version of mastra-admin-runner-limited."""

__version__ = "0.1.0"
