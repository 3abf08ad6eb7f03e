"""Caption adherence judged by a classifier: does a generated clip show what its caption says?
``classifier`` trains and caches the attribute classifier of the built-in shapes data,
``color_regions`` is its color front end, and ``captions`` compares its predictions with the
clip's labels. Anything that judges a video against its caption through a learned model
belongs here.
"""
