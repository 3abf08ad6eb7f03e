"""What is evaluated: ``registry`` names the protocols (given and predicted frames, resolution,
data set, clip and sample counts) and fits them to a tokenizer's temporal stride; ``clips``
loads each protocol's held-out clips (built-in, folder or Moving MNIST data, with labels where
known). A new protocol is one entry in ``registry.PROTOCOLS``; a new source of held-out data
goes in ``clips``.
"""
