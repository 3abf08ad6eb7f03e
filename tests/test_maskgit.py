"""Masked parallel decoding (MaskGIT): schedule, objective, sampler parity with sequential
decoding, frame causality, matched size, and the family end to end through the CLI and eval."""

import csv
import json
import math
from dataclasses import replace

import pytest
import torch
import yaml

from tests.conftest import generator_fit_args
from vtlm.generate.interface import load_generator
from vtlm.gpt.config import preset as gpt_preset
from vtlm.gpt.model import GPT
from vtlm.gpt.vocab import prefix_ids, sequence_positions
from vtlm.maskgit.config import MaskGITConfig, preset
from vtlm.maskgit.model import MaskGIT
from vtlm.maskgit.objective import (
    MaskGITLossConfig,
    build_batch,
    choose_masked,
    masked_token_loss,
    teacher_forcing_mask,
)
from vtlm.maskgit.sampling import MaskGITSamplingConfig, network_calls, sample_codes
from vtlm.maskgit.schedule import masked_counts

TINY = replace(preset("debug"), text_len=4, max_frames=3, grid_h=2, grid_w=3, codebook_size=50, text_size=300)
CAPTIONS = [[7, 8], [9]]


def randomized(frame_causal: bool) -> MaskGIT:
    """A TINY network with weights far enough from init that its argmaxes have clear margins."""
    torch.manual_seed(0)
    model = MaskGIT(replace(TINY, frame_causal=frame_causal)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def test_schedule_unmasks_at_least_one_token_per_step_and_ends_clean():
    assert masked_counts(6, 6, "cosine") == [5, 4, 3, 2, 1, 0]  # steps = tokens: one per step
    assert masked_counts(3, 8, "cosine") == [2, 1, 0]  # never more steps than tokens
    for schedule in ("cosine", "linear"):
        counts = masked_counts(64, 8, schedule)
        assert counts[-1] == 0 and all(a > b for a, b in zip([64, *counts], counts))
    cosine, linear = masked_counts(64, 8, "cosine"), masked_counts(64, 8, "linear")
    assert cosine[0] > linear[0] and cosine[3] > linear[3]  # cosine keeps more masked early
    assert cosine[3] == math.floor(64 * math.cos(math.pi / 2 * 4 / 8))


def test_masking_takes_the_scheduled_share_and_never_the_caption_or_a_clean_prefix():
    ratio = torch.tensor([0.0, 0.01, 0.5, 1.0])
    maskable = torch.ones(4, 10, dtype=torch.bool)
    maskable[:, :4] = False
    chosen = choose_masked(maskable, ratio)
    assert chosen.sum(1).tolist() == [1, 1, 3, 6] and not chosen[:, :4].any()  # ceil, >= 1, maskable only
    cfg = replace(TINY, grid_h=8, grid_w=8)  # 64 tokens a frame: the share is close to its mean
    codes = torch.randint(0, 50, (400, 3, 8, 8))
    seeded = torch.Generator().manual_seed(0)
    batch = build_batch(cfg, MaskGITLossConfig(prefix_share=0.0), 5000, codes, [[7]] * 400, generator=seeded)
    assert not (batch.ids[:, : cfg.prefix_len] == 5000).any()  # the caption is never masked
    assert torch.equal(batch.ids[:, cfg.prefix_len :] == 5000, batch.masked)
    assert (batch.masked.sum(1) >= 1).all()
    share = batch.masked.float().mean(1)
    assert abs(float(share.mean()) - 2 / math.pi) < 0.03  # E[cos(pi/2 u)] = 2 / pi
    loss = MaskGITLossConfig(prefix_share=1.0, max_prefix_frames=2)
    batch = build_batch(cfg, loss, 5000, codes, [[7]] * 400, generator=seeded)
    per_frame = batch.masked.view(400, 3, 64).any(-1)  # (B, frames): any token masked
    assert not per_frame[:, 0].any() and (batch.masked.sum(1) >= 1).all()  # a clean first frame
    clean_second = ~per_frame[:, 1]
    assert 0.4 < float(clean_second.float().mean()) < 0.6  # 1 or 2 clean frames, half each
    assert per_frame[clean_second, 2].all()  # after 2 clean frames, the last one is predicted


def test_the_frame_causal_layout_masks_its_copy_only_and_every_frame():
    cfg = replace(TINY, frame_causal=True)
    codes = torch.randint(0, 50, (64, 3, 2, 3))
    batch = build_batch(cfg, MaskGITLossConfig(), 999, codes, [[7]] * 64)
    n, start = 3 * 6, cfg.prefix_len
    assert batch.ids.shape == (64, start + 2 * n) and batch.video_start == start + n
    assert not (batch.ids[:, : start + n] == 999).any()  # caption and clean frames intact
    assert torch.equal(batch.ids[:, start + n :] == 999, batch.masked)
    assert (batch.masked.view(64, 3, 6).sum(-1) >= 1).all()  # every frame of the copy is trained
    assert torch.equal(batch.positions[start + n :], batch.positions[start : start + n])


def test_the_loss_is_the_cross_entropy_of_masked_positions_only():
    class Recording(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(8, 50, bias=False)
            self.states = torch.randn(2, 4 + 2 + 18, 8)

        def hidden(self, ids, positions, mask):
            self.seen = ids
            return self.states

    net = Recording()
    codes = torch.randint(0, 50, (2, 3, 2, 3))
    batch = build_batch(TINY, MaskGITLossConfig(), 999, codes, CAPTIONS)
    loss, logs = masked_token_loss(net, batch)
    assert torch.equal(net.seen, batch.ids)
    logits = net.head(net.states[:, TINY.prefix_len :])
    expected = torch.nn.functional.cross_entropy(logits[batch.masked], codes.reshape(2, -1)[batch.masked])
    assert torch.allclose(loss, expected, atol=1e-5)
    assert torch.allclose(logs["masked_loss"], expected, atol=1e-5)
    other = replace(batch, targets=torch.where(batch.masked, batch.targets, (batch.targets + 1) % 50))
    assert torch.allclose(masked_token_loss(net, other)[0], loss)  # unmasked targets do not count
    loss.backward()
    assert net.head.weight.grad is not None and torch.isfinite(net.head.weight.grad).all()


@pytest.mark.parametrize("frame_causal", [False, True])
def test_greedy_raster_decoding_with_one_token_per_step_is_sequential_decoding(frame_causal):
    """steps = tokens, raster order, argmax draws: the sampler (frame-causal: with KV caches)
    fills the same codes as running the network on the partially masked sequence and filling
    the next position with its argmax, one position at a time."""
    model = randomized(frame_causal)
    prefix = torch.randint(0, 50, (2, 1, 2, 3))
    cfg = MaskGITSamplingConfig(steps=100, temperature=0, order="raster")
    sampled = sample_codes(model, CAPTIONS, 3, cfg, prefix)
    tokens, start = TINY.frame_tokens, TINY.prefix_len
    ids = torch.full((2, 3 * tokens), model.mask_id)
    ids[:, :tokens] = model.vocab.codes_to_ids(prefix.reshape(2, -1))
    head = prefix_ids(model.vocab, CAPTIONS, TINY.text_len)
    with torch.no_grad():
        for j in range(tokens, 3 * tokens):
            frames = j // tokens + 1 if frame_causal else 3  # frame-causal: later frames play no part
            sequence = torch.cat([head, ids[:, : frames * tokens]], dim=1)
            positions = sequence_positions(TINY.text_len, frames, 2, 3, with_eov=False)
            logits = model(sequence, positions, model.frame_mask(frames))
            ids[:, j] = model.vocab.codes_to_ids(logits[:, start + j].argmax(-1))
    assert torch.equal(sampled, model.vocab.ids_to_codes(ids).view(2, 3, 2, 3))


def test_frame_causal_logits_ignore_later_frames_and_training_sees_what_sampling_sees():
    model = randomized(True)
    codes = torch.randint(0, 50, (2, 3, 2, 3))
    head = prefix_ids(model.vocab, CAPTIONS, TINY.text_len)
    positions = sequence_positions(TINY.text_len, 3, 2, 3, with_eov=False)
    ids = torch.cat([head, model.vocab.codes_to_ids(codes.reshape(2, -1))], dim=1)
    changed = ids.clone()
    changed[:, -6:] = model.mask_id  # the last frame
    with torch.no_grad():
        a, b = (model(x, positions, model.frame_mask(3)) for x in (ids, changed))
        assert torch.allclose(a[:, :-6], b[:, :-6], atol=1e-6) and not torch.allclose(a[:, -6:], b[:, -6:])
        # training's [prefix | clean | masked copy]: masked frame f's logits are those of
        # [prefix | clean frames < f | masked frame f] under the frame-causal mask
        batch = build_batch(model.cfg, MaskGITLossConfig(), model.mask_id, codes, CAPTIONS)
        trained = model(batch.ids, batch.positions, batch.attention)[:, batch.video_start :]
        copy = batch.ids[:, batch.video_start :]
        for f in range(3):
            past = ids[:, : TINY.prefix_len + 6 * f]  # caption and clean frames < f
            alone = torch.cat([past, copy[:, 6 * f : 6 * f + 6]], dim=1)
            out = model(alone, positions[: alone.shape[1]], model.frame_mask(f + 1))
            assert torch.allclose(out[:, -6:], trained[:, 6 * f : 6 * f + 6], atol=1e-5)
    # 1 prefix token, 2 frames of 2: prefix 1; clean 2 x 3 + 2 x 5; masked copy 2 x 3 + 2 x 5
    assert teacher_forcing_mask(1, 2, 2).sum() == 1 + 16 + 16


@pytest.mark.parametrize("frame_causal", [False, True])
def test_network_calls_are_counted_with_guidance_and_a_sliding_window(frame_causal):
    model = randomized(frame_causal)
    calls = []
    hidden = model.hidden
    model.hidden = lambda *args, **kw: calls.append(1) or hidden(*args, **kw)
    cfg = MaskGITSamplingConfig(steps=4, cfg_scale=2.0)
    prefix = torch.randint(0, 50, (2, 1, 2, 3))
    video = sample_codes(model, CAPTIONS, 6, cfg, prefix)  # 6 > max_frames 3: the window slides
    assert video.shape == (2, 6, 2, 3) and torch.equal(video[:, :1], prefix)
    assert len(calls) == network_calls(model.cfg, cfg, 6, 1)
    again = sample_codes(model, CAPTIONS, 6, cfg, prefix, torch.Generator().manual_seed(3))
    assert torch.equal(again, sample_codes(model, CAPTIONS, 6, cfg, prefix, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize(
    "name, codes",
    [
        ("debug", 4375),
        ("micro", 1000),
        ("mini", 1000),
        ("tiny", 4375),
        ("small", 4375),
        ("base", 4375),
        ("large", 4375),
    ],
)
def test_presets_match_the_gpt_within_5_percent(name, codes):
    with torch.device("meta"):  # parameter counts only
        gpt = GPT(replace(gpt_preset(name), codebook_size=codes, text_size=512)).num_params()
        maskgit = MaskGIT(replace(preset(name), codebook_size=codes, text_size=512)).num_params()
    assert abs(maskgit - gpt) / gpt < 0.05, (maskgit, gpt)


@pytest.fixture(scope="module")
def maskgit_and_gpt_runs(random_token_pipeline, tmp_path_factory):
    """A frame-causal debug MaskGIT (12 steps) and a debug GPT (2 steps) on the random token
    pipeline, both through `vtlm ... fit`."""
    from vtlm.cli.main import main

    root = tmp_path_factory.mktemp("maskgit_runs")
    main(generator_fit_args("maskgit", random_token_pipeline, root / "maskgit", 12, "0.003")
         + ["--model.frame_causal", "true", "--model.text_len", "16"])  # fmt: skip
    main(generator_fit_args("gpt", random_token_pipeline, root / "gpt", 2, "0.003")
         + ["--model.text_len", "16"])  # fmt: skip
    return root / "maskgit", root / "gpt"


def test_fit_exports_a_generator_that_rolls_out_past_its_window_and_samples_through_the_cli(
    maskgit_and_gpt_runs, tmp_path
):
    from vtlm.cli.main import main

    run, _ = maskgit_and_gpt_runs
    meta = yaml.safe_load((run / "maskgit" / "config.yaml").read_text())
    assert meta["kind"] == "maskgit" and meta["config"]["frame_causal"] and meta["training"]["steps"] == 12
    rows = [r for r in csv.DictReader(open(run / "logs" / "metrics.csv")) if r.get("train/masked_loss")]
    losses = [float(r["train/masked_loss"]) for r in rows]  # logged every 2 of 12 steps
    assert losses[-1] < losses[0], losses
    window = yaml.safe_load((run / "run.yaml").read_text())["data"]["window"]
    length = meta["config"]["text_len"] + 2 + 2 * window * 64  # 8 x 8 grid; frame-causal: frames twice
    net = MaskGIT(MaskGITConfig.from_dict(meta["config"]))
    assert meta["training"]["flops"] == pytest.approx(12 * 8 * length * net.flops_per_token(length), rel=1e-9)
    generator = load_generator(
        run / "maskgit", maskgit=MaskGITSamplingConfig(steps=2, cfg_scale=2.0, reencode_context=True)
    )
    prefix = torch.rand(2, 3, 5, 32, 32) * 2 - 1
    # 17 frames are 5 latent frames, past the 3 of the window: it slides (with the round trip)
    videos = generator.generate(["a small red circle moves left", ""], 17, prefix=prefix, seed=0)
    assert videos.shape == (2, 3, 17, 32, 32) and torch.equal(videos[:, :, :5], prefix)
    assert videos.min() >= -1 and videos.max() <= 1
    assert (generator.temporal_stride, generator.resolution) == (4, 32)
    # 5 latent frames after 2: caption once, then 3 windows of 2 context frames + 2 steps
    assert generator.function_evaluations(17, 5) == 1 + 3 * (2 + 2)
    written = main(["sample", str(run / "maskgit"), "--out", str(tmp_path / "samples"), "--caption", "a blue square",
                    "--num_frames", "9", "--maskgit.steps", "3", "--maskgit.temperature", "0.5"])  # fmt: skip
    samples = tmp_path / "samples"
    assert (samples / "sample_000.mp4").is_file() and (samples / "sheet.gif").is_file()
    assert written is None or len(written) == 1


def test_eval_compare_takes_maskgit_beside_the_gpt(maskgit_and_gpt_runs, tmp_path):
    from vtlm.cli.main import main

    maskgit, gpt = maskgit_and_gpt_runs
    out = tmp_path / "eval"
    main(["eval", "compare", str(maskgit / "maskgit"), str(gpt / "gpt"), "--out", str(out),
          "--eval.protocols", "[shapes-cont5]", "--eval.seeds", "[0]", "--eval.num_clips", "2",
          "--eval.samples_per_clip", "1", "--eval.synthetic.kind", "digits",  # shapes clips, no classifier
          "--eval.sampling.sweeps", "{maskgit: {steps: [2]}}", "--eval.sampling.maskgit.steps", "3",
          "--eval.bootstrap", "50", "--eval.cost_repeats", "1",
          "--eval.floor_sizes", "[]", "--eval.leakage_check", "false"])  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert set(results["generators"]) == {"maskgit", "gpt"}
    assert results["settings"]["sampling"]["maskgit"]["steps"] == 3
    rows = {(r["generator"], r["variant"]) for r in results["results"] if r["protocol"] == "shapes-cont5"}
    assert {("maskgit", "default"), ("maskgit", "steps=2"), ("gpt", "default")} <= rows
    assert (out / "report.md").is_file()
