"""The GPT: causality, cached decoding, CFG, sequences, training, sampling end to end."""

import csv
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import generator_fit_args
from vtlm.data.video_io import get_backend
from vtlm.generate.interface import load_generator
from vtlm.gpt.config import GPTConfig, preset
from vtlm.gpt.model import GPT
from vtlm.gpt.objective import GPTLossConfig, build_sequences, corrupt_video_inputs, next_token_loss
from vtlm.gpt.sampling import SamplingConfig, choose, filter_logits, sample_codes
from vtlm.gpt.vocab import Vocab, prefix_ids, sequence_positions
from vtlm.layers.attention import choose_backend

VTLM = str(Path(sys.executable).with_name("vtlm"))
TINY = replace(preset("debug"), text_len=4, max_frames=3, grid_h=2, grid_w=3, codebook_size=50, text_size=300)


def randomized(cfg: GPTConfig = TINY) -> GPT:
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_vocabulary_layout_and_sequences():
    vocab = Vocab(text_size=300, codebook_size=50)
    assert vocab.code_offset == 300 and vocab.size == 384 and vocab.size % 64 == 0
    assert (vocab.pad, vocab.bos, vocab.bov, vocab.eov) == (0, 2, 4, 5)
    codes = torch.arange(12).view(1, 2, 2, 3)
    batch = build_sequences(vocab, codes, [[10, 11, 12, 13, 14]], text_len=4, drop=None)
    assert batch.ids[0].tolist() == [2, 10, 11, 12, 13, 4, *range(300, 312), 5]  # caption cut to 4
    assert batch.video_targets.sum() == 12 and batch.video_targets[5] and not batch.video_targets[4]
    assert batch.text_targets[0].tolist()[:5] == [True, True, True, True, False]
    short = build_sequences(vocab, codes, [[10, 11, 12]], text_len=4, drop=None)
    assert short.ids[0, :6].tolist() == [2, 10, 11, 12, 0, 4] and short.text_targets[0].tolist()[:4] == [
        True,
        True,
        True,
        False,
    ]
    dropped = prefix_ids(vocab, [[10, 11]], 4, torch.tensor([True]))
    assert dropped[0].tolist() == [2, 0, 0, 0, 0, 4]
    pos = sequence_positions(4, 2, 2, 3)
    assert pos.shape == (6 + 12 + 1, 3) and pos[6].tolist() == [6, 6, 6] and pos[17].tolist() == [7, 7, 8]
    with pytest.raises(ValueError, match="video code range"):
        vocab.ids_to_codes(torch.tensor([5]))


def test_loss_at_init_is_close_to_ln_vocab():
    cfg = replace(TINY, codebook_size=1000, text_size=300)
    model = GPT(cfg)
    codes = torch.randint(0, 1000, (4, 3, 2, 3))
    batch = build_sequences(model.vocab, codes, [[7, 8]] * 4, 4, None)
    loss, logs = next_token_loss(model, batch, GPTLossConfig(), 0)
    assert abs(float(loss) - math.log(model.vocab.size)) < 0.15
    assert float(logs["bits_per_video_token"]) == pytest.approx(float(loss) / math.log(2))


@pytest.mark.parametrize("text_loss_weight", [0.0, 0.5])
def test_chunked_loss_and_gradients_equal_the_full_logits_reference(text_loss_weight):
    model = randomized()
    codes = torch.randint(0, 50, (3, 3, 2, 3))
    batch = build_sequences(model.vocab, codes, [[7, 8], [9], [10, 11, 12]], 4, None)
    cfg = GPTLossConfig(text_loss_weight=text_loss_weight)
    loss, logs = next_token_loss(model, batch, cfg, 0)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    token = F.cross_entropy(
        model(batch.ids[:, :-1], batch.positions[:-1]).flatten(0, 1),
        batch.ids[:, 1:].flatten(),
        reduction="none",
    ).view(3, -1)
    want = token[:, batch.video_targets].mean() + text_loss_weight * token[batch.text_targets].mean()
    want.backward()
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5)
    assert float(logs["video_loss"]) == pytest.approx(
        float(token[:, batch.video_targets].mean().detach()), rel=1e-5
    )
    assert ("text_loss" in logs) == (text_loss_weight > 0)
    for got, p in zip(grads, model.parameters()):
        assert torch.allclose(got, p.grad, atol=1e-6, rtol=1e-4)


def test_a_future_token_never_changes_an_earlier_logit():
    model = randomized()
    ids = torch.randint(0, 350, (1, 19))
    positions = sequence_positions(4, 2, 2, 3)
    base = model(ids, positions)
    changed = ids.clone()
    changed[0, 12:] = torch.randint(0, 350, (7,))
    out = model(changed, positions)
    assert torch.allclose(out[:, :12], base[:, :12], atol=1e-5)
    assert not torch.allclose(out[:, 12:], base[:, 12:])


@pytest.mark.parametrize("kind", ["1d", "3d"])
def test_rope_scores_depend_on_the_offset_only(kind):
    """<R(m) q, R(n) k> is a function of m - n, per axis; rotations keep norms."""
    from vtlm.layers.rope import apply_rope, rope_angles, rope_dims

    q, k = torch.randn(1, 1, 1, 24, dtype=torch.float64).float(), torch.randn(1, 1, 1, 24).float()

    def score(m, n):
        rotations = rope_angles(torch.tensor([m, n]), 24, kind)
        return (apply_rope(q, rotations[:1]) * apply_rope(k, rotations[1:])).sum().item()

    m, n, shift = [2, 5, 1], [7, 3, 4], [11, 6, 9]
    shifted = ([a + s for a, s in zip(m, shift)], [a + s for a, s in zip(n, shift)])
    assert score(m, n) == pytest.approx(score(*shifted), abs=1e-4)
    assert score(m, n) != pytest.approx(score(m, [n[0] + 1, n[1], n[2]]), abs=1e-3)
    rotated = apply_rope(q, rope_angles(torch.tensor([m]), 24, kind))
    assert rotated.norm().item() == pytest.approx(q.norm().item(), rel=1e-6)
    # the real form (what a compiled step uses) rotates as the complex one does
    real = rope_angles(torch.tensor([m, n]), 24, kind, real=True)
    assert real.shape == (2, 2, 24) and not real.is_complex()
    torch.testing.assert_close(apply_rope(q, real[:1]), rotated, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        apply_rope(k, real[1:]), apply_rope(k, rope_angles(torch.tensor([n]), 24, kind))
    )
    # each pair turns by its own axis's coordinate times the pair's frequency
    expected, dims = [], rope_dims(24, kind)
    for axis, dim in enumerate(dims):
        expected += [m[axis] * 10000.0 ** (-2 * j / dim) for j in range(dim // 2)]
    cosines = torch.cos(torch.tensor(expected, dtype=torch.float64)).float()
    torch.testing.assert_close(real[0, 0, 0::2], cosines, rtol=0, atol=1e-7)


@pytest.mark.parametrize("rope", ["3d", "1d"])
@pytest.mark.parametrize("captions", [[[10, 11], [12]], [[10, 11]]])  # batch 1: transposed weights
def test_cached_greedy_decoding_gives_the_tokens_of_the_full_forward(rope, captions):
    model = randomized(replace(TINY, rope=rope))
    cached = sample_codes(model, captions, 3, SamplingConfig(temperature=0))
    ids = prefix_ids(model.vocab, captions, 4)
    positions = sequence_positions(4, 3, 2, 3, with_eov=False)
    for _ in range(18):
        logits = model(ids, positions[: ids.shape[1]])[:, -1, 300:350]
        ids = torch.cat([ids, logits.argmax(-1)[:, None] + 300], dim=1)
    assert torch.equal(cached.flatten(1), ids[:, 6:] - 300)
    transposed = [m.transposed_weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert all((t is not None) == (len(captions) == 1) for t in transposed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_matches_torch_and_its_gradients(dtype):
    """vtlm's written-out RMSNorm equals ``F.rms_norm`` in float32, values and gradients, and
    returns the input's dtype."""
    from vtlm.layers.basic import RMSNorm

    norm = RMSNorm(24)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = (torch.randn(3, 5, 24) * 4).to(dtype).requires_grad_()
    reference_x = x.detach().float().requires_grad_()
    reference = F.rms_norm(reference_x, (24,), norm.weight, norm.eps)
    y = norm(x)
    assert y.dtype == dtype
    torch.testing.assert_close(
        y.float(), reference.to(dtype).float(), rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-2
    )
    y.float().square().sum().backward()
    (reference.to(dtype).float().square().sum()).backward()
    if dtype == torch.float32:
        torch.testing.assert_close(x.grad, reference_x.grad, rtol=1e-5, atol=1e-5)
    assert norm.weight.grad is not None and norm.weight.grad.abs().sum() > 0


def test_single_row_linear_uses_the_transposed_copy_and_matches():
    from vtlm.layers.basic import keep_transposed, linear

    layer = torch.nn.Linear(16, 24, bias=False)
    keep_transposed(layer, True)
    x = torch.randn(1, 1, 16)
    assert torch.allclose(linear(x, layer), layer(x), atol=1e-6)
    layer.transposed_weight = torch.zeros(16, 24)  # proves which path a call took
    assert linear(x, layer).abs().sum() == 0 and linear(torch.randn(2, 16), layer).abs().sum() > 0


def test_cfg_scale_one_equals_conditional_sampling_and_guidance_changes_it():
    model = randomized()
    captions = [[10, 11], [20]]
    plain = sample_codes(
        model, captions, 2, SamplingConfig(temperature=1.0), generator=torch.Generator().manual_seed(3)
    )
    scale_one = sample_codes(
        model,
        captions,
        2,
        SamplingConfig(temperature=1.0, cfg_scale=1.0),
        generator=torch.Generator().manual_seed(3),
    )
    assert torch.equal(plain, scale_one)
    guided = sample_codes(model, captions, 2, SamplingConfig(temperature=0, cfg_scale=4.0))
    assert not torch.equal(guided, sample_codes(model, captions, 2, SamplingConfig(temperature=0)))


def test_sliding_window_goes_beyond_the_context_and_keeps_the_prefix():
    model = randomized()
    prefix = torch.randint(0, 50, (2, 2, 2, 3))
    codes = sample_codes(
        model,
        [[1], [2]],
        7,
        SamplingConfig(temperature=1.0, top_k=5),
        prefix=prefix,
        generator=torch.Generator().manual_seed(0),
    )
    assert codes.shape == (2, 7, 2, 3) and codes.shape[1] > TINY.max_frames
    assert torch.equal(codes[:, :2], prefix) and 0 <= int(codes.min()) and int(codes.max()) < 50
    with pytest.raises(ValueError, match="num_frames"):
        sample_codes(model, [[1], [2]], 2, SamplingConfig(), prefix=prefix)
    with pytest.raises(ValueError, match="do not fit the context"):
        sample_codes(model, [[1], [2]], 9, SamplingConfig(), prefix=torch.zeros(2, 3, 2, 3, dtype=torch.long))


def test_reencoded_context_feeds_every_slid_window_and_only_those():
    """With reencode_context, each slid window continues from the round trip's codes (here a
    shift of every code), the first window from the prefix as given; the output keeps the
    sampled codes. An identity round trip gives exactly the plain tokens."""
    model, greedy = randomized(), SamplingConfig(temperature=0)
    prefix = torch.randint(0, 50, (2, 1, 2, 3))
    plain = sample_codes(model, [[1], [2]], 6, greedy, prefix=prefix)
    again = replace(greedy, reencode_context=True)
    seen = []

    def identity(codes):
        seen.append(codes.shape[1])
        return codes.clone()

    assert torch.equal(sample_codes(model, [[1], [2]], 6, again, prefix=prefix, reencode=identity), plain)
    assert seen == [3, 4, 5]  # once per slid window, on the whole video so far
    shifted = sample_codes(model, [[1], [2]], 6, again, prefix=prefix, reencode=lambda c: (c + 7) % 50)
    assert torch.equal(shifted[:, :3], plain[:, :3]) and not torch.equal(shifted[:, 3:], plain[:, 3:])
    with pytest.raises(ValueError, match="reencode_context"):
        sample_codes(model, [[1], [2]], 6, again, prefix=prefix)


def test_top_k_top_p_filtering():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    assert (
        torch.isinf(filter_logits(logits, 2, 1.0)[0, 2:]).all()
        and torch.isfinite(filter_logits(logits, 2, 1.0)[0, :2]).all()
    )
    kept = torch.isfinite(filter_logits(logits, 0, 0.7)[0])
    assert kept.tolist() == [True, True, False, False]  # p(4) = 0.64 < 0.7, so the second is kept too


@pytest.mark.parametrize("top_k, top_p", [(5, 1.0), (5, 0.6), (0, 0.6), (0, 1.0)])
def test_choose_draws_from_the_filtered_distribution(top_k, top_p):
    """The top-k fast path (a draw among the k best) has the distribution of the masked softmax."""
    logits = torch.randn(1, 40, generator=torch.Generator().manual_seed(3)) * 2
    cfg = SamplingConfig(temperature=0.8, top_k=top_k, top_p=top_p)
    want = filter_logits(logits / 0.8, top_k, top_p).softmax(dim=-1)[0]
    draws = choose(logits.expand(20000, -1), cfg, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=40).double() / draws.numel()
    assert freq[want == 0].sum() == 0  # never outside the kept set
    assert (freq - want).abs().max() < 0.015  # 20000 draws: ~0.0035 standard error at most


def test_context_corruption_touches_only_video_inputs():
    vocab = Vocab(300, 50)
    batch = build_sequences(vocab, torch.randint(0, 50, (8, 3, 2, 3)), [[7]] * 8, 4, None)
    inputs = batch.ids[:, :-1]
    corrupted = corrupt_video_inputs(
        inputs, batch.video_targets, vocab, 0.5, torch.Generator().manual_seed(0)
    )
    changed = corrupted != inputs
    assert changed[:, :6].sum() == 0 and changed.any()
    assert ((corrupted[:, 6:] >= 300) & (corrupted[:, 6:] < 350)).all()
    assert GPTLossConfig(corruption_max=0.3, corruption_ramp_steps=100).corruption(50) == pytest.approx(0.15)


def test_sdpa_backend_is_taken_on_cpu():
    assert choose_backend("auto", torch.zeros(1)) == "sdpa"
    with pytest.raises(ValueError, match="flash"):
        choose_backend("flash", torch.zeros(1))


def test_presets_and_flops():
    sizes = {
        n: GPT(replace(preset(n), codebook_size=4375, text_size=512)).num_params() for n in ("debug", "small")
    }
    assert sizes["debug"] < 2e6 and 15e6 < sizes["small"] < 25e6
    model = GPT(TINY)
    # 6 per weight a token meets in a matrix product (blocks and output layer; norms are elementwise)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert model.flops_per_token(10) == 6 * weights + 12 * TINY.depth * TINY.dim * 10


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_flash_and_sdpa_agree_on_gpu():
    pytest.importorskip("flash_attn")
    model = randomized(replace(TINY, attention="flash")).cuda().bfloat16()
    ids = torch.randint(0, 350, (2, 19), device="cuda")
    positions = sequence_positions(4, 2, 2, 3)
    flash = model(ids, positions)
    for block in model.blocks:
        block.attn.backend = "sdpa"
    assert torch.allclose(flash.float(), model(ids, positions).float(), atol=5e-2)


def test_debug_fit_lowers_the_loss_and_samples_end_to_end(debug_gpt_run, token_pipeline, tmp_path):
    rows = [
        r for r in csv.DictReader(open(debug_gpt_run / "logs" / "metrics.csv")) if r.get("train/video_loss")
    ]
    first, last = float(rows[0]["train/video_loss"]), float(rows[-1]["train/video_loss"])
    assert last < first - 0.5, (first, last)
    assert (debug_gpt_run / "gpt" / "weights.safetensors").is_file()
    out = tmp_path / "samples"
    result = subprocess.run(
        [
            VTLM,
            "sample",
            str(debug_gpt_run / "gpt"),
            "--out",
            str(out),
            "--from_data.split",
            "test",
            "--data_indices",
            "[0, 1]",
            "--prefix_frames",
            "5",
            "--num_frames",
            "17",
            "--sampling.top_k",
            "50",
            "--sampling.cfg_scale",
            "2.0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = get_backend("decord").probe(out / "sample_000.mp4")
    assert (info.num_frames, info.height, info.width) == (17, 32, 32)
    assert (out / "sheet.gif").is_file() and (out / "sample_001.gif").is_file()


def test_generator_interface_keeps_the_prefix_and_checks_inputs(debug_gpt_run):
    gen = load_generator(debug_gpt_run / "gpt", sampling=SamplingConfig(temperature=1.0))
    prefix = torch.rand(2, 3, 5, 32, 32) * 2 - 1
    videos = gen.generate(["a red circle moves left", ""], 13, prefix=prefix, seed=1)
    assert videos.shape == (2, 3, 13, 32, 32) and torch.equal(videos[:, :, :5], prefix)
    assert videos.min() >= -1 and videos.max() <= 1
    again = gen.generate(["a red circle moves left", ""], 13, prefix=prefix, seed=1)
    assert torch.equal(videos, again)
    with pytest.raises(ValueError, match="text budget"):
        gen.generate(["word " * 80], 9)
    with pytest.raises(ValueError, match="frames"):
        gen.generate(["x"], 8)


def test_a_second_fit_resumes_from_the_last_checkpoint(token_pipeline, tmp_path):
    from vtlm.cli.main import main

    run = tmp_path / "resume"
    main(generator_fit_args("gpt", token_pipeline, run, 6, "0.001"))
    first = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert first["global_step"] == 6
    main(generator_fit_args("gpt", token_pipeline, run, 10, "0.001"))  # same run dir, more steps
    second = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert second["global_step"] == 10
    steps = [
        int(r["step"])
        for r in csv.DictReader(open(run / "logs" / "metrics.csv"))
        if r.get("train/video_loss")
    ]
    assert max(steps) >= 8  # the log goes on past the first run's last step


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_linear_cross_entropy_matches_the_reference_in_float64(chunk):
    from vtlm.layers.cross_entropy import linear_cross_entropy

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(150, 24, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(40, 24, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 40, (150,), generator=gen)
    row_weights = torch.rand(150, generator=gen, dtype=torch.float64) * (torch.arange(150) % 3 > 0)
    total, rows = linear_cross_entropy(hidden, weight, targets, row_weights, chunk)
    (2.5 * total).backward()
    got = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    reference = F.cross_entropy(hidden @ weight.t(), targets, reduction="none")
    (2.5 * (reference * row_weights).sum()).backward()
    assert torch.allclose(rows.double(), reference.detach(), atol=1e-5) and not rows.requires_grad
    assert torch.allclose(got[0], hidden.grad, atol=1e-5) and torch.allclose(got[1], weight.grad, atol=1e-5)
    with torch.no_grad():  # no gradients wanted: the same losses
        assert torch.equal(linear_cross_entropy(hidden, weight, targets, row_weights, chunk)[1], rows)
