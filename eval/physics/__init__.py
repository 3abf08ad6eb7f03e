"""Physical plausibility of the built-in shapes data from explicit object tracks: ``tracker``
follows each palette-colored object through a video, ``track_scores`` compares the tracks of a
generated continuation with the true ones (position error, bounces, collisions, identity swaps).
Scores that need object trajectories belong here; pixel-level motion metrics go in ``metrics``.
"""
