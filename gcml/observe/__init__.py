"""Mock observations: kinematic maps of tracers, photometric images."""
