"""GPT workloads: vtlm's GPT beside HF transformers GPT-2 (sdpa) and x-transformers (Decoder).

One shape for all: 6 layers, d=384, 6 heads, vocab 8192. Training: batch 4 x 512 tokens, one
AdamW step per call, tokens/s and vtlm's model FLOPs utilization against a float32 matmul peak
measured in the same run. Sampling: a 64-token prompt and 448 new tokens with top-k 50, KV
cache on for everyone, at batch 1 and 8, and at batch 1 again with every model's weights in
bfloat16. vtlm's batch-1 rate is also given as a fraction of three bounds measured in the same
run: the memory-bandwidth bound (weight bytes per token / copy bandwidth); the matmul floor
(the time of the batch-1 matrix-vector products alone, every weight read once per token as a
cached decoding step must, in the faster weight layout); and the decode floor, those products
with each layer's attention over the cached keys and values between them, bare, in the step's
order at the run's mean context. The decode floor is the work no cached decoder of this model
can skip (every weight and every cached key and value read once per token), so it caps any
implementation's batch-1 rate; the matmul floor leaves out the cache reads. Each model's training
step is also profiled once (``op_profile``): its operators by kind, how many, how long each.
The bounds themselves are measured in ``bounds``. Whatever is compared is measured in turns,
round by round (``timing.measure_in_turns``): the models' training steps with the matmul peak,
their samplers with the floors, so a shared machine's drift over minutes falls on all alike.
"""

from __future__ import annotations

import copy
import statistics

import torch

from vtlm.gpt.config import GPTConfig
from vtlm.gpt.model import GPT
from vtlm.gpt.sampling import SamplingConfig, choose
from vtlm.layers.cross_entropy import linear_cross_entropy
from vtlm.layers.quant import int8_copy, weight_bytes

from .bounds import copy_bandwidth, floor_fractions, matmul_peak, sample_with_floors, utilization
from .op_profile import op_shares
from .timing import measure, measure_in_turns

LAYERS, DIM, HEADS, VOCAB, BATCH, SEQ = 6, 384, 6, 8192, 4, 512
PROMPT, NEW, TOP_K = 64, 448, 50


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
def vtlm_generate(
    model: GPT, prompt: torch.Tensor, new: int, generator: torch.Generator, compiled: bool = False
) -> torch.Tensor:
    """Top-k sampling with the static KV cache: one prefill, then one cached step per token
    (``compiled``: through the compiled step, ``vtlm.gpt.exported``); each token
    drawn by vtlm's sampler (``vtlm.gpt.sampling.choose``)."""
    model.setup_caches(prompt.shape[0], prompt.shape[1] + new)
    logits = model(prompt, _positions(prompt.shape[1]), start=0)[:, -1]
    settings, out = SamplingConfig(top_k=TOP_K), []
    for i in range(new):
        token = choose(logits, settings, generator)[:, None]
        out.append(token)
        if i + 1 < new:
            at = prompt.shape[1] + i
            logits = model(token, _positions(1, at), start=at, compiled=compiled)[:, -1]
    return torch.cat(out, dim=1)


def _peers() -> tuple[dict, list[str]]:
    """name -> (model, loss_fn(ids), generate_fn(prompt, new, model)); and notes for missing peers.
    ``generate_fn`` samples with the model it is given: the original or a bf16 copy."""
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
            lambda prompt, new, m=net: AutoregressiveWrapper(m).generate(
                prompt, new, cache_kv=True, filter_kwargs={"k": TOP_K}
            ),
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

    def our_loss(batch):  # vtlm's training loss: logits chunk by chunk from the last hidden states
        states = ours.hidden(batch[:, :-1], _positions(batch.shape[1] - 1)).flatten(0, 1)
        targets = batch[:, 1:].flatten()
        weights = torch.full(targets.shape, 1 / targets.numel())
        return linear_cross_entropy(states, ours.head.weight, targets, weights)[0]

    calls = {}
    for name, (model, loss_fn) in {
        "vtlm": (ours, our_loss),
        **{n: (m, f) for n, (m, f, _) in peers.items()},
    }.items():
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        calls[name] = lambda m=model, f=loss_fn, o=optimizer: step(m, f, o)
    # every model's steps in turns, and the matmul peak after each round for vtlm's utilization
    peaks = []
    train = measure_in_turns(
        calls, BATCH * seq, "tokens/s", repeats, lambda: peaks.append(matmul_peak(repeats=3))
    )
    # where each model's training step spends its time, by kind of operator (untimed)
    profiles = {name: op_shares(call, item="step") for name, call in calls.items()}
    peak = statistics.median(peaks)
    mfu = utilization(ours.flops_per_token(seq), train["vtlm"], peaks)
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
            "op_profiles": profiles,
        }
    ]
    new = 32 if quick else NEW
    bandwidth = copy_bandwidth()
    for model in [ours] + [m for m, _, _ in peers.values()]:
        model.eval()  # every model samples in eval mode
    for batch, dtype in ((1, torch.float32), (8, torch.float32), (1, torch.bfloat16)):
        models = {"vtlm": ours, **{n: m for n, (m, _, _) in peers.items()}}
        if dtype != torch.float32:  # copies in bf16: training above used the float32 originals
            models = {n: copy.deepcopy(m).to(dtype) for n, m in models.items()}
        prompt = torch.randint(0, VOCAB, (batch, PROMPT))
        samples = {
            "vtlm": lambda p=prompt, m=models["vtlm"]: vtlm_generate(
                m, p, new, torch.Generator().manual_seed(0)
            )
        }
        samples["vtlm"]()  # every sampler's warm-up; a peer's also shows whether it runs
        for name, (_, _, generate) in peers.items():
            samples[name] = lambda p=prompt, g=generate, m=models[name]: _no_grad(g, p, new, m)
            try:
                samples[name]()
            except Exception as err:  # a peer that cannot sample in this dtype is named, not fatal
                notes.append(f"{name} sampling in {dtype} not run: {type(err).__name__}: {err}")
                del samples[name]
        floors = {}
        if batch == 1:  # with the floors of vtlm's weights, all in turns
            rates, floors = sample_with_floors(
                models["vtlm"], samples, new, PROMPT + new // 2, repeats, warmup=False
            )
        else:
            rates = measure_in_turns(samples, batch * new, "tokens/s", repeats, warmup=False)
        suffix = "" if dtype == torch.float32 else "_bf16"
        row = {
            "id": f"gpt_sample_b{batch}{suffix}",
            "workload": f"GPT sampling, batch {batch}, {PROMPT}+{new} tokens, top-k"
            + ("" if dtype == torch.float32 else ", bf16"),
            "unit": "tokens/s",
            "vtlm": rates["vtlm"].median_rate,
            "vtlm_spread": rates["vtlm"].spread,
            "peers": {n: m.median_rate for n, m in rates.items() if n != "vtlm"},
            "shape": {**shape, "batch": batch, "dtype": str(dtype).removeprefix("torch.")},
        }
        if batch == 1:
            weights = models["vtlm"]
            bound = bandwidth / weight_bytes(weights)
            row.update(
                bandwidth_bound=bound,
                fraction_of_bound=rates["vtlm"].median_rate / bound,
                copy_gbps=bandwidth / 1e9,
                **floor_fractions(rates["vtlm"].median_rate, floors),
            )
            if dtype == torch.float32:  # the eager decoder's operators per token (untimed)
                profile = op_shares(
                    lambda p=prompt: vtlm_generate(ours, p, new, torch.Generator().manual_seed(0)),
                    items=new,
                    item="token",
                )
                row["op_profiles"] = {"vtlm": profile}
        rows.append(row)
    fp32 = next(row for row in rows if row["id"] == "gpt_sample_b1")
    for kind, what in (
        ("compiled", "the compiled one-token step"),
        ("int8", "int8 weight-only linear layers"),
    ):
        rows.append(b1_variant_row(kind, ours, new, repeats, bandwidth, fp32, shape))
        notes.append(
            f"GPT sampling at batch 1 with {what}: {rows[-1]['vs_fp32']:.2f}x the float32 eager rate of "
            f"this run ({rows[-1]['vtlm']:.0f} against {fp32['vtlm']:.0f} tokens/s)"
        )
    return rows, notes


def b1_variant_row(
    kind: str, model: GPT, new: int, repeats: int, bandwidth: float, fp32: dict, shape: dict
) -> dict:
    """Batch-1 sampling of one decoding option, beside the eager float32 row ``fp32`` of the same
    run: ``kind`` "compiled" (the exported step, ``vtlm.gpt.exported``; its compilation is in the
    untimed warm-up) or "int8" (weight-only int8 linear layers, ``vtlm.layers.quant``; the
    memory-bandwidth bound from the int8 bytes)."""
    network = int8_copy(model) if kind == "int8" else model
    prompt = torch.randint(0, VOCAB, (1, PROMPT))
    floors = {}
    if kind == "compiled":  # the same weights as float32 eager: its floors, measured in turns with it
        rates, floors = sample_with_floors(
            model,
            {
                "vtlm": lambda: vtlm_generate(
                    model, prompt, new, torch.Generator().manual_seed(0), compiled=True
                )
            },
            new,
            PROMPT + new // 2,
            repeats,
        )
        rate = rates["vtlm"]
    else:
        rate = measure(
            f"sample vtlm b1 {kind}",
            lambda: vtlm_generate(network, prompt, new, torch.Generator().manual_seed(0)),
            new,
            "tokens/s",
            repeats=repeats,
        )
    row = {
        "id": f"gpt_sample_b1_{kind}",
        "workload": f"GPT sampling, batch 1, {PROMPT}+{new} tokens, top-k, "
        + ("compiled step" if kind == "compiled" else "int8 weights"),
        "unit": "tokens/s",
        "vtlm": rate.median_rate,
        "vtlm_spread": rate.spread,
        "peers": {},
        "shape": {**shape, "batch": 1, "dtype": "float32" + (", int8 weights" if kind == "int8" else "")},
        "vs_fp32": rate.median_rate / fp32["vtlm"],
        "bandwidth_bound": bandwidth / weight_bytes(network),
    }
    row.update(floor_fractions(rate.median_rate, floors))
    return row


def _no_grad(generate, prompt: torch.Tensor, new: int, model) -> object:
    with torch.no_grad():
        return generate(prompt, new, model)
