"""The `vtlm` command line: one group of commands per part of the toolkit."""
