"""File formats: MapSet (HDF5), snapshots, FITS, tables, model bundles."""
