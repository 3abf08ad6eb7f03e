"""The video tokenizer: a causal 3-D convolutional VQ autoencoder (frames <-> spacetime codes)."""
