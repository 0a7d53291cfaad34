"""autoresearch-swarm: many autoresearch agents on one multi-GPU machine, one trustworthy board."""

__version__ = "0.1.0"
