"""The diffusion baseline over the tokenizer's latents, built from the shared layers."""
