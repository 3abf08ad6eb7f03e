"""Metrics that compare generated videos with true ones: set-level distances (``frechet``: the
Frechet and kernel distances; ``fvd``: FVD / KVD in I3D features), motion (``physics_iq``:
Physics-IQ motion masks), temporal flicker (``temporal``) and a GPT's bits per video token on
held-out clips (``likelihood``). A new metric goes here as its own module; ``vtlm.eval.scoring``
(per-clip scores) or ``vtlm.eval.features`` (set-level) wires it into the harness. Pixel
metrics (PSNR, SSIM, MSE) live in ``vtlm.common.pixel_metrics``, since tokenizer training uses
them too.
"""
