"""Physics of gcml: units, mass models, Jeans equation, GC systems, restricted N-body mergers."""
