"""Data: built-in procedural datasets, folders of real videos and images, clip sampling,
batching, caption text models, and writing clips to look at. The bottom layer of vtlm: it
imports nothing from the models above it."""
