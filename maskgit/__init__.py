"""Masked parallel decoding over the tokenizer's codes (MaskGIT-style)."""
