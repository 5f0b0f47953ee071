"""panel: reviewer-panel verdicts for software tools."""

__version__ = "0.1.0"
