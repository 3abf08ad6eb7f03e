"""The GPT over ``[text prefix | video tokens]``: next-token training and cached sampling."""
