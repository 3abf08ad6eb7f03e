"""Frame-causal diffusion (diffusion forcing): causality, per-frame levels, the cached and rolling
frame-by-frame sampler against the full forward, history guidance, matched presets, and the
family end to end through the CLI, `vtlm sample` and `vtlm eval compare`."""

import json
from dataclasses import replace

import pytest
import torch
import yaml

from tests.conftest import generator_fit_args
from vtlm.diffusion.config import DiTConfig
from vtlm.diffusion.config import preset as dit_preset
from vtlm.diffusion.forcing import ForcingConfig, ForcingSamplerConfig, sample, training_loss
from vtlm.diffusion.model import DiT, caption_batch
from vtlm.generate.interface import load_generator
from vtlm.gpt.config import preset as gpt_preset
from vtlm.gpt.model import GPT

TINY = replace(
    dit_preset("debug", frame_causal=True),
    dim=64,
    text_len=4,
    max_frames=3,
    grid_h=4,
    grid_w=4,
    text_size=300,
)
TEXT = caption_batch([[5, 6], [7]], 4)
UNCOND = torch.zeros_like(TEXT)


def randomized(cfg: DiTConfig = TINY) -> DiT:
    torch.manual_seed(0)
    model = DiT(cfg).eval()
    with torch.no_grad():  # adaLN-zero starts as the identity: give every path some weight
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def both(model, frames: int, cfg: ForcingSamplerConfig, prefix=None, window: int = 3):
    """(cached, full-forward reference) samples with the same noise."""
    runs = []
    for cached in (True, False):
        generator = torch.Generator().manual_seed(0)
        shape = (2, 5, frames, 4, 4)
        runs.append(sample(model, shape, TEXT, cfg, window, prefix, UNCOND, generator, cached=cached))
    return runs


def test_a_later_frame_never_changes_an_earlier_frames_output():
    model = randomized()
    x, levels = torch.randn(2, 5, 3, 4, 4), torch.rand(2, 3)
    out = model(x, levels, TEXT)
    later_x, later_levels = x.clone(), levels.clone()
    later_x[:, :, 2] += torch.randn_like(later_x[:, :, 2])
    later_levels[:, 2] = 1 - later_levels[:, 2]
    changed = model(later_x, later_levels, TEXT)
    torch.testing.assert_close(changed[:, :, :2], out[:, :, :2], rtol=0, atol=1e-6)
    assert (changed[:, :, 2] - out[:, :, 2]).abs().max() > 1e-3
    # the bidirectional DiT of the same weights lets the change reach the earlier frames
    bidirectional = DiT(replace(TINY, frame_causal=False)).eval()
    bidirectional.load_state_dict(model.state_dict())
    assert (bidirectional(later_x, later_levels, TEXT) - bidirectional(x, levels, TEXT))[
        :, :, 0
    ].abs().max() > 1e-3


def test_per_frame_noise_levels_reach_the_right_frames():
    """An oracle that knows x0 and reads each frame's level recovers v = noise - x0 exactly: so
    every frame was noised with the level given for it, and the levels differ across frames."""
    x0 = torch.randn(64, 5, 3, 4, 4)
    seen = {}

    def oracle(xs, levels, text):
        seen["levels"] = levels
        return (xs - x0) / levels[:, None, :, None, None].clamp(min=1e-4)

    cfg = ForcingConfig(history_share=0.4, history_dropout=0.3, max_context_noise=0.2)
    loss, logs = training_loss(oracle, x0, TEXT[:1].expand(64, -1), cfg, torch.Generator().manual_seed(0))
    levels = seen["levels"]
    assert float(loss) < 1e-6
    assert (levels.max(dim=1).values - levels.min(dim=1).values > 0.01).float().mean() > 0.5  # per frame
    assert (levels == 1).any() and ((levels > 0) & (levels <= 0.2)).sum() > 10  # dropped / noised history
    assert 0 < float(logs["history_frames"]) < 1

    def shuffled(xs, levels, text):  # the same oracle reading the levels one frame off
        return oracle(xs, levels.roll(1, dims=1), text)

    wrong, _ = training_loss(shuffled, x0, TEXT[:1].expand(64, -1), cfg, torch.Generator().manual_seed(0))
    assert float(wrong) > 0.1

    def wrong_on_history(xs, levels, text):  # wrong only on history (exactly 0 or 1 below): out of the loss
        history = (levels == 0) | (levels == 1)
        return torch.where(
            history[:, None, :, None, None], torch.full_like(xs, 100.0), oracle(xs, levels, text)
        )

    for only in (
        ForcingConfig(history_share=1.0, history_dropout=0.0, max_context_noise=0.0),
        ForcingConfig(history_share=0.0, history_dropout=1.0),
    ):
        loss, logs = training_loss(
            wrong_on_history, x0, TEXT[:1].expand(64, -1), only, torch.Generator().manual_seed(1)
        )
        assert float(loss) < 1e-6 and float(logs["history_frames"]) > 0.2


@pytest.mark.parametrize(
    "cfg, frames, window, given",
    [
        (ForcingSamplerConfig(steps=3, context_noise=0.1), 3, 3, 1),
        (
            ForcingSamplerConfig(steps=2, solver="heun", hist_scale=2.0, cfg_scale=3.0, context_noise=0.0),
            3,
            3,
            1,
        ),
        (ForcingSamplerConfig(steps=2, chunk=2, cfg_scale=2.0), 4, 4, 2),  # chunks of 2: 2 held at most
    ],
)
def test_cached_sampler_equals_the_full_forward(cfg, frames, window, given):
    """Within the window: every earlier frame encoded once, against the masked full forward of
    [caption | held frames | chunk] at every step."""
    model = randomized(replace(TINY, max_frames=window))
    cached, full = both(model, frames, cfg, window=window)
    torch.testing.assert_close(cached, full, rtol=0, atol=1e-5)
    prefix = torch.randn(2, 5, given, 4, 4)
    cached, full = both(model, frames, cfg, prefix, window=window)
    assert torch.equal(cached[:, :, :given], prefix)
    torch.testing.assert_close(cached, full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("anchor", [False, True])
def test_rolling_cache_equals_reencoding_the_window(anchor):
    """Past the window (8 latent frames, window 3) the cache rolls and re-rotates held keys; a
    one-block network's keys depend on their frame alone, so this must equal re-encoding the
    window with positions restarted exactly. (Deeper networks differ: held keys remember frames
    that have left the window; see vtlm.diffusion.forcing.)"""
    model = randomized(replace(TINY, depth=1))
    cfg = ForcingSamplerConfig(steps=2, context_noise=0.1, hist_scale=1.5, cfg_scale=2.0, anchor_first=anchor)
    cached, full = both(model, 8, cfg, torch.randn(2, 5, 1, 4, 4))
    torch.testing.assert_close(cached, full, rtol=0, atol=1e-5)
    other, _ = both(model, 8, replace(cfg, anchor_first=not anchor), torch.randn(2, 5, 1, 4, 4))
    assert not torch.allclose(cached[:, :, 4:], other[:, :, 4:])  # the anchor does change what is seen


def test_history_guidance_terms():
    model = randomized()
    plain, _ = both(model, 3, ForcingSamplerConfig(steps=2))
    unit, _ = both(model, 3, ForcingSamplerConfig(steps=2, hist_scale=1.0, cfg_scale=1.0))
    torch.testing.assert_close(unit, plain, rtol=0, atol=0)
    guided, _ = both(model, 3, ForcingSamplerConfig(steps=2, hist_scale=3.0))
    assert not torch.allclose(guided[:, :, 1:], plain[:, :, 1:], atol=1e-4)

    def frame_by_frame(xs, levels, text):  # sees no other frame: history guidance must do nothing
        return 0.5 * xs + text.float().mean(dim=1)[:, None, None, None, None] * levels[:, None, :, None, None]

    runs = {}
    for name, cfg in {"plain": ForcingSamplerConfig(steps=2, cfg_scale=2.0), "hist": ForcingSamplerConfig(steps=2, cfg_scale=2.0, hist_scale=3.0)}.items():  # fmt: skip
        generator = torch.Generator().manual_seed(0)
        runs[name] = sample(
            frame_by_frame, (2, 5, 3, 4, 4), TEXT, cfg, 3, None, UNCOND, generator, cached=False
        )
    torch.testing.assert_close(runs["hist"], runs["plain"])
    with pytest.raises(ValueError, match="uncond_text"):
        sample(model, (2, 5, 3, 4, 4), TEXT, ForcingSamplerConfig(steps=1, cfg_scale=2.0), 3)


def test_function_evaluations_count_steps_and_commits():
    cfg = ForcingSamplerConfig(steps=4)
    assert cfg.function_evaluations(5, 2, 3) == 3 * 4 + 2 + 2  # 3 chunks, 2 prefix commits, 2 later
    assert replace(cfg, solver="heun", chunk=2).function_evaluations(5, 0, 3) == 3 * 7 + 2


@pytest.mark.parametrize(
    "name, codes, channels",
    [("debug", 4375, 5), ("micro", 1000, 4), ("mini", 1000, 4), ("tiny", 4375, 5), ("small", 4375, 5)],
)
def test_presets_match_the_gpt_within_5_percent(name, codes, channels):
    with torch.device("meta"):
        gpt = GPT(replace(gpt_preset(name), codebook_size=codes, text_size=512)).num_params()
        net = DiT(replace(dit_preset(name, frame_causal=True), text_size=512, latent_dim=channels))
    assert net.cfg.frame_causal and abs(net.num_params() - gpt) / gpt < 0.05, (net.num_params(), gpt)


def test_debug_fit_reload_sample_and_compare_with_a_gpt(random_token_pipeline, tmp_path, capsys):
    from vtlm.cli.main import main

    steps = 6
    main(generator_fit_args("forcing", random_token_pipeline, tmp_path / "forcing", steps, "0.002"))
    main(generator_fit_args("gpt", random_token_pipeline, tmp_path / "gpt", 2, "0.003"))
    model_dir = tmp_path / "forcing" / "forcing"
    meta = yaml.safe_load((model_dir / "config.yaml").read_text())
    cfg = DiTConfig.from_dict(meta["config"])
    window = yaml.safe_load((tmp_path / "forcing" / "run.yaml").read_text())["data"]["window"]
    assert meta["kind"] == "forcing" and cfg.frame_causal
    assert meta["training"]["flops"] == pytest.approx(
        steps * 8 * DiT(cfg).flops_per_example(window), rel=1e-9
    )

    generator = load_generator(
        model_dir, forcing=ForcingSamplerConfig(steps=2, cfg_scale=2.0, hist_scale=1.5)
    )
    prefix = torch.rand(2, 3, 5, 32, 32) * 2 - 1
    videos = generator.generate(
        ["a small red circle moves left", ""], 17, prefix=prefix, seed=0
    )  # 5 latent frames
    assert videos.shape == (2, 3, 17, 32, 32) and torch.equal(videos[:, :, :5], prefix)
    assert (
        videos.min() >= -1
        and videos.max() <= 1
        and (generator.temporal_stride, generator.resolution) == (4, 32)
    )
    assert torch.equal(
        videos, generator.generate(["a small red circle moves left", ""], 17, prefix=prefix, seed=0)
    )
    assert generator.function_evaluations(17, 5) == 3 * 2 + 2 + 2

    written = main(["sample", str(model_dir), "--out", str(tmp_path / "samples"), "--caption", "a blue square",
                    "--num_frames", "9", "--forcing.steps", "2", "--forcing.anchor_first", "true"])  # fmt: skip
    assert written is None or len(written) == 1
    assert (tmp_path / "samples" / "sample_000.mp4").is_file()

    out = tmp_path / "eval"  # synthetic kind digits: shapes clips, no shapes attribute classifier to train
    main(["eval", "compare", str(tmp_path / "gpt" / "gpt"), str(model_dir), "--out", str(out),
          "--eval.protocols", "[shapes-cont5]", "--eval.sweep_protocol", "null", "--eval.seeds", "[0]",
          "--eval.num_clips", "1", "--eval.samples_per_clip", "1", "--eval.bootstrap", "20", "--eval.cost_repeats", "1",
          "--eval.floor_sizes", "[]", "--eval.leakage_check", "false", "--eval.sampling.forcing.steps", "2",
          "--eval.sampling.gpt.top_k", "10", "--eval.synthetic.kind", "digits",
          "--eval.synthetic.shapes.resolution", "32"])  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert set(results["generators"]) == {"gpt", "forcing"}
    assert results["generators"]["forcing"]["sampling"]["steps"] == 2
    assert results["settings"]["sampling"]["forcing"]["steps"] == 2
    rows = {(r["protocol"], r["generator"]) for r in results["results"]}
    assert {("shapes-cont5", "gpt"), ("shapes-cont5", "forcing")} <= rows
