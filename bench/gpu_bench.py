"""GPU section, only where ``torch.cuda.is_available()``: vtlm alone at GPU sizes, in bf16.

- GPT ``base`` preset (vocab 8192, 1-D RoPE): one AdamW step under bf16 autocast per call
  (attention ``auto`` sees float32 activations there and takes SDPA, which autocast runs in
  bf16), tokens/s and MFU against a bf16 matmul peak measured on the same device.
- GPT ``base`` sampling with the weights in bf16 and the KV cache (the CPU workload's top-k
  sampler; attention ``auto``: flash-attn when installed, else SDPA), tokens/s at batch 1 and 32;
  at batch 1 also with the one-token step replayed as a CUDA graph (``graphed_step``; its
  capture in the untimed warm-up), beside the eager rate.
- Tokenizer ``base`` preset on 17x128x128 clips (-> 5x16x16): train step (bf16 autocast),
  encode and decode, clips/s.

Every timed call ends with ``torch.cuda.synchronize``, so the time covers the GPU work.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from vtlm.gpt.config import preset as gpt_preset
from vtlm.gpt.model import GPT
from vtlm.tokenizer.config import preset as tokenizer_preset

from .gpt_bench import PROMPT, VOCAB, _positions, vtlm_generate
from .timing import measure
from .tokenizer_bench import vtlm_runner

SKIP_NOTE = "GPU section skipped: no CUDA device (torch.cuda.is_available() is False)"


def _synced(fn):
    def call():
        fn()
        torch.cuda.synchronize()

    return call


def bf16_matmul_peak(size: int = 8192, repeats: int = 5) -> float:
    """bf16 FLOP/s of a square matmul on the current CUDA device, the best of a few tries."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    best = float("inf")
    for _ in range(repeats + 1):  # the first is a warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _base_gpt() -> GPT:
    cfg = replace(gpt_preset("base"), text_size=6, codebook_size=VOCAB - 6, rope="1d", attention="auto")
    return GPT(cfg).cuda()


def _gpt_train_row(model: GPT, quick: bool, repeats: int) -> dict:
    batch, seq = (2, 256) if quick else (8, 1024)
    ids = torch.randint(0, VOCAB, (batch, seq), device="cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)  # freed on return

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(ids[:, :-1], _positions(seq - 1))
        loss = F.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train = measure("gpu train", _synced(step), batch * seq, "tokens/s", repeats=repeats)
    peak = bf16_matmul_peak(4096 if quick else 8192)
    return {
        "id": "gpu_gpt_train",
        "workload": f"GPU: GPT base train step, {batch}x{seq} tokens, bf16 autocast",
        "unit": "tokens/s",
        "vtlm": train.median_rate,
        "vtlm_spread": train.spread,
        "peers": {},
        "shape": {"preset": "base", "vocab": VOCAB, "batch": batch, "seq": seq},
        "params": {"vtlm": model.num_params()},
        "mfu": model.flops_per_token(seq) * train.median_rate / peak,
        "matmul_peak_gflops": peak / 1e9,
        "matmul_dtype": "bf16",
    }


def _gpt_sample_rows(model: GPT, quick: bool, repeats: int) -> list[dict]:
    model = model.to(torch.bfloat16).eval()
    new, rows = (32 if quick else 448), []
    for batch, graphed in ((1, False), (32, False), (1, True)):
        prompt = torch.randint(0, VOCAB, (batch, PROMPT), device="cuda")
        generator = torch.Generator(device="cuda").manual_seed(0)
        rate = measure(
            "gpu sample" + (" graphed" if graphed else ""),
            _synced(lambda p=prompt, g=generator, c=graphed: vtlm_generate(model, p, new, g, compiled=c)),
            batch * new,
            "tokens/s",
            repeats=repeats,
        )
        rows.append(
            {
                "id": f"gpu_gpt_sample_b{batch}" + ("_graphed" if graphed else ""),
                "workload": f"GPU: GPT base sampling, batch {batch}, {PROMPT}+{new} tokens, bf16"
                + (", CUDA graph step" if graphed else ""),
                "unit": "tokens/s",
                "vtlm": rate.median_rate,
                "vtlm_spread": rate.spread,
                "peers": {},
                "shape": {"preset": "base", "vocab": VOCAB, "batch": batch, "prompt": PROMPT, "new": new},
            }
        )
        if graphed:
            rows[-1]["vs_eager"] = rate.median_rate / rows[0]["vtlm"]
    return rows


def _tokenizer_rows(quick: bool, repeats: int) -> list[dict]:
    runner = vtlm_runner(tokenizer_preset("base"), device="cuda")
    batch = 1 if quick else 4
    clips = torch.rand(batch, 3, 17, 128, 128, device="cuda") * 2 - 1

    runner.model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        codes = runner.encode(clips)
    calls = {
        "train": lambda: runner.train_step(clips),  # sets train mode itself
        "encode": lambda: runner.encode(clips),
        "decode": lambda: runner.decode(codes),
    }
    rows = []
    for key, fn in calls.items():
        if key != "train":
            runner.model.eval()
        grad = torch.enable_grad() if key == "train" else torch.no_grad()
        with grad, torch.autocast("cuda", dtype=torch.bfloat16):
            rate = measure(f"gpu tokenizer {key}", _synced(fn), batch, "clips/s", repeats=repeats)
        rows.append(
            {
                "id": f"gpu_tokenizer_{key}",
                "workload": f"GPU: tokenizer base {key} 17x128x128 -> 5x16x16, b{batch}, bf16 autocast",
                "unit": "clips/s",
                "vtlm": rate.median_rate,
                "vtlm_spread": rate.spread,
                "peers": {},
                "params": {"vtlm": sum(p.numel() for p in runner.model.parameters())},
            }
        )
    return rows


def run_gpu_bench(quick: bool = False) -> tuple[list[dict], list[str]]:
    """GPU rows, or no rows and a note saying why the section was skipped."""
    if not torch.cuda.is_available():
        return [], [SKIP_NOTE]
    torch.manual_seed(0)
    repeats = 2 if quick else 5
    model = _base_gpt()
    rows = [_gpt_train_row(model, quick, repeats)]
    rows += _gpt_sample_rows(model, quick, repeats)
    del model
    torch.cuda.empty_cache()
    rows += _tokenizer_rows(quick, repeats)
    device = torch.cuda.get_device_name(0)
    return rows, [f"GPU section ran on {device}"]
