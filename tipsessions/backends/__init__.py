"""Session backends: the interface in :mod:`.base`, one module per backend."""
