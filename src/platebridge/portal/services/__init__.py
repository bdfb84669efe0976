"""Domain functions: take an ``AsyncSession`` and plain values, return plain results."""
