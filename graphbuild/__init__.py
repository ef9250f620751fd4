"""graphbuild — read and validate an input bundle and build the multi-layer account evidence graph."""
