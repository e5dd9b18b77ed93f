"""Neural networks and their registry (names as users type them: mass-cnn, pidoc-ced, ...)."""
