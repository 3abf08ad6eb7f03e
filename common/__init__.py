"""Bottom-level helpers shared by packages that must not import each other: the pixel metrics
(``pixel_metrics``: MSE, PSNR, SSIM per frame) that both tokenizer validation and the eval harness
report, and the machine description (``machine``) that bench and eval results record. Put code
here only when two packages on different levels need it; it imports nothing from other ``vtlm``
packages (only torch, numpy and the standard library).
"""
