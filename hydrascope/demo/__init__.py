"""The built-in demo world: a seeded synthetic input bundle with planted campaigns."""
