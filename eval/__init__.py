"""The shared evaluation harness: protocols, metrics and reports for any generator."""
