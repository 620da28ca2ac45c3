"""Keyed data-set providers: the interface and the built-in ones."""
