"""The online service: gwtwin stream."""
