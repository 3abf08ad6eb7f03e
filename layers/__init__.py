"""Shared building blocks (attention, RoPE, norms, MLP) used by the GPT and the diffusion baseline."""
