"""skiff: a declarative, reconciling container orchestrator that speaks Docker Compose."""

__version__ = "0.1.0"
