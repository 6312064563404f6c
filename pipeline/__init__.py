"""posepipe: multi-person 2D pose labelling of image collections and video archives with Part Affinity Fields."""
__version__ = "0.1.0"
