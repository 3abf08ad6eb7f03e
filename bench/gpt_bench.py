"""GPT workloads: vtlm's GPT beside HF transformers GPT-2 (sdpa) and x-transformers (Decoder).

One shape for all: 6 layers, d=384, 6 heads, vocab 8192. Training: batch 4 x 512 tokens, one
AdamW step per call, tokens/s and vtlm's model FLOPs utilization against a float32 matmul peak
measured in the same run. Sampling: a 64-token prompt and 448 new tokens with top-k 50, KV
cache on for everyone, at batch 1 and 8; vtlm's batch-1 rate also as a fraction of the
memory-bandwidth bound (weight bytes per token / copy bandwidth measured in the same run).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from vtlm.gpt.config import GPTConfig
from vtlm.gpt.model import GPT
from vtlm.gpt.sampling import filter_logits

from .timing import measure

LAYERS, DIM, HEADS, VOCAB, BATCH, SEQ = 6, 384, 6, 8192, 4, 512
PROMPT, NEW, TOP_K = 64, 448, 50


def matmul_peak(size: int = 1024, repeats: int = 5) -> float:
    """float32 FLOP/s of a square matmul on this machine, the best of a few tries."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        best = min(best, (time.perf_counter() - start) / 4)
    return 2 * size**3 / best


def copy_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Bytes per second moved by a large tensor copy (read + write)."""
    src = torch.empty(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(_timed(lambda: dst.copy_(src)) for _ in range(repeats))
    return 2 * src.numel() * 4 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def vtlm_model() -> GPT:
    # 6 text ids (the specials) + 8186 codes = 8192 rows; 1-D RoPE over a flat sequence.
    return GPT(
        GPTConfig(
            dim=DIM,
            depth=LAYERS,
            heads=HEADS,
            text_size=6,
            codebook_size=VOCAB - 6,
            rope="1d",
            attention="sdpa",
        )
    )


def _positions(n: int, start: int = 0) -> torch.Tensor:
    return torch.arange(start, start + n)[:, None].expand(-1, 3)


@torch.no_grad()
def vtlm_generate(model: GPT, prompt: torch.Tensor, new: int, generator: torch.Generator) -> torch.Tensor:
    """Top-k sampling with the static KV cache: one prefill, then one cached step per token."""
    model.setup_caches(prompt.shape[0], prompt.shape[1] + new)
    logits = model(prompt, _positions(prompt.shape[1]), start=0)[:, -1]
    out = []
    for i in range(new):
        token = torch.multinomial(
            F.softmax(filter_logits(logits.float(), TOP_K, 1.0), dim=-1), 1, generator=generator
        )
        out.append(token)
        if i + 1 < new:
            logits = model(token, _positions(1, prompt.shape[1] + i), start=prompt.shape[1] + i)[:, -1]
    return torch.cat(out, dim=1)


def _peers() -> tuple[dict, list[str]]:
    """name -> (model, loss_fn(ids), generate_fn(prompt, new)); and notes for missing peers."""
    peers, notes = {}, []
    try:
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(n_layer=LAYERS, n_embd=DIM, n_head=HEADS, vocab_size=VOCAB, n_positions=SEQ)
        hf = GPT2LMHeadModel._from_config(config, attn_implementation="sdpa")
        peers["hf-gpt2"] = (
            hf,
            lambda ids, m=hf: m(input_ids=ids, labels=ids).loss,
            lambda prompt, new, m=hf: m.generate(
                prompt,
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=True,
                top_k=TOP_K,
                use_cache=True,
                pad_token_id=0,
            ),
        )
    except Exception as err:
        notes.append(f"transformers GPT-2 not run: {type(err).__name__}: {err}")
    try:
        from x_transformers import AutoregressiveWrapper, Decoder, TransformerWrapper

        net = TransformerWrapper(
            num_tokens=VOCAB,
            max_seq_len=SEQ,
            attn_layers=Decoder(dim=DIM, depth=LAYERS, heads=HEADS, attn_flash=True),
        )
        wrapper = AutoregressiveWrapper(net)
        peers["x-transformers"] = (
            net,
            lambda ids, w=wrapper: w(ids),
            lambda prompt, new, w=wrapper: w.generate(prompt, new, cache_kv=True, filter_kwargs={"k": TOP_K}),
        )
    except Exception as err:
        notes.append(f"x-transformers not run: {type(err).__name__}: {err}")
    return peers, notes


def run_gpt_bench(quick: bool = False) -> tuple[list[dict], list[str]]:
    torch.manual_seed(0)
    peers, notes = _peers()
    ours = vtlm_model()
    seq = 128 if quick else SEQ
    ids = torch.randint(0, VOCAB, (BATCH, seq))
    repeats = 2 if quick else 5

    def step(model, loss_fn, optimizer):
        loss = loss_fn(ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def our_loss(batch):
        logits = ours(batch[:, :-1], _positions(batch.shape[1] - 1))
        return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())

    train = {}
    for name, (model, loss_fn) in {
        "vtlm": (ours, our_loss),
        **{n: (m, f) for n, (m, f, _) in peers.items()},
    }.items():
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        train[name] = measure(
            f"train {name}",
            lambda m=model, f=loss_fn, o=optimizer: step(m, f, o),
            BATCH * seq,
            "tokens/s",
            repeats=repeats,
        )
    peak = matmul_peak()
    mfu = ours.flops_per_token(seq) * train["vtlm"].median_rate / peak
    shape = {"layers": LAYERS, "dim": DIM, "heads": HEADS, "vocab": VOCAB, "batch": BATCH, "seq": seq}
    params = {
        "vtlm": ours.num_params(),
        **{n: sum(p.numel() for p in m.parameters()) for n, (m, _, _) in peers.items()},
    }
    rows = [
        {
            "id": "gpt_train",
            "workload": f"GPT train step, {BATCH}x{seq} tokens",
            "unit": "tokens/s",
            "vtlm": train["vtlm"].median_rate,
            "vtlm_spread": train["vtlm"].spread,
            "peers": {n: m.median_rate for n, m in train.items() if n != "vtlm"},
            "shape": shape,
            "params": params,
            "mfu": mfu,
            "matmul_peak_gflops": peak / 1e9,
        }
    ]
    new = 32 if quick else NEW
    bandwidth = copy_bandwidth()
    weight_bytes = sum(p.numel() * p.element_size() for p in ours.parameters())
    for batch in (1, 8):
        prompt = torch.randint(0, VOCAB, (batch, PROMPT))
        rates = {}
        for model in [ours] + [m for m, _, _ in peers.values()]:
            model.eval()  # every model samples in eval mode
        gen = torch.Generator().manual_seed(0)
        rates["vtlm"] = measure(
            "sample vtlm",
            lambda p=prompt, g=gen: vtlm_generate(ours, p, new, g),
            batch * new,
            "tokens/s",
            repeats=repeats,
        )
        for name, (_, _, generate) in peers.items():
            with torch.no_grad():
                rates[name] = measure(
                    f"sample {name}",
                    lambda p=prompt, g=generate: g(p, new),
                    batch * new,
                    "tokens/s",
                    repeats=repeats,
                )
        row = {
            "id": f"gpt_sample_b{batch}",
            "workload": f"GPT sampling, batch {batch}, {PROMPT}+{new} tokens, top-k",
            "unit": "tokens/s",
            "vtlm": rates["vtlm"].median_rate,
            "vtlm_spread": rates["vtlm"].spread,
            "peers": {n: m.median_rate for n, m in rates.items() if n != "vtlm"},
            "shape": shape,
        }
        if batch == 1:
            bound = bandwidth / weight_bytes
            row.update(
                {
                    "bandwidth_bound": bound,
                    "fraction_of_bound": rates["vtlm"].median_rate / bound,
                    "copy_gbps": bandwidth / 1e9,
                }
            )
        rows.append(row)
    return rows, notes
