"""Training infrastructure shared by the tokenizer, the GPT and the diffusion baseline:
trainer settings, optimizer and schedule, EMA weights, checkpoint directories."""
