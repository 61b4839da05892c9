"""Method families: each module registers its family and its variants on import."""
