"""adengine: an AI ad engine for Django shops."""

__version__ = "0.1.0"
