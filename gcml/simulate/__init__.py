"""Simulations that produce training data: galaxies with GC systems (simulate-maps)."""
