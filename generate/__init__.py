"""Generators behind one interface: what the evaluation harness and `vtlm sample` call.

A generator takes captions, optional prefix frames, a frame count and a seed, and returns
videos (B, 3, T, H, W) in [-1, 1]. The GPT answers it today; the diffusion baseline and later
families (frame-causal diffusion, masked parallel decoding) join behind the same interface.
"""
