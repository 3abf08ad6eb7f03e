"""The GPT's faster decoding: the rolling KV cache against re-encoding the window, speculative
Jacobi decoding against the plain sampler, the compiled step against the eager one, their
config fields and call counts."""

import dataclasses
from dataclasses import replace

import pytest
import torch

from vtlm.gpt.choice import speculate
from vtlm.gpt.config import GPTConfig, preset
from vtlm.gpt.jacobi import decode_jacobi
from vtlm.gpt.model import GPT
from vtlm.gpt.parallel import parallel_calls
from vtlm.gpt.sampling import SamplingConfig, choose, decode_sequential, sample_codes
from vtlm.gpt.stream import Stream, network_calls
from vtlm.gpt.vocab import prefix_ids, sequence_positions
from vtlm.layers.rolling_cache import RollingKV
from vtlm.layers.rope import apply_rope

# window of 3 latent frames of 2x3 tokens, 50 codes
TINY = replace(preset("debug"), text_len=4, max_frames=3, grid_h=2, grid_w=3, codebook_size=50, text_size=300)
CAPTIONS = [[10, 11], [12]]


def randomized(cfg: GPTConfig = TINY) -> GPT:
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def sampled(
    model, cfg: SamplingConfig, frames: int, prefix=None, captions=CAPTIONS
) -> tuple[torch.Tensor, int]:
    """(codes, network calls) of one seeded sampling run."""
    with network_calls(model) as calls:
        codes = sample_codes(model, captions, frames, cfg, prefix, torch.Generator().manual_seed(0))
    return codes, calls[0]


GREEDY, SAMPLING = SamplingConfig(temperature=0), SamplingConfig(temperature=1.0, top_k=20)
GUIDED = SamplingConfig(temperature=1.0, cfg_scale=2.5)


# -- the rolling cache ---------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [GREEDY, SAMPLING, GUIDED], ids=["greedy", "sampling", "guided"])
def test_rolling_cache_before_any_slide_gives_the_plain_tokens(cfg):
    """Inside the window (3 latent frames) nothing rolls: the same tokens, for a deep network too."""
    model = randomized(replace(TINY, depth=2))
    rolling = replace(cfg, rolling_cache=True)
    assert torch.equal(sampled(model, rolling, 3)[0], sampled(model, cfg, 3)[0])
    prefix = torch.randint(0, 50, (2, 2, 2, 3))
    assert torch.equal(sampled(model, rolling, 3, prefix)[0], sampled(model, cfg, 3, prefix)[0])


@pytest.mark.parametrize("cfg", [GREEDY, SAMPLING, GUIDED], ids=["greedy", "sampling", "guided"])
def test_rolling_cache_equals_reencoding_the_window_for_one_block(cfg):
    """A 4x rollout (12 latent frames through a window of 3): a one-block network's keys depend
    on their token and position alone, so rolling gives the re-encoded tokens, with as many
    network calls (one per new token)."""
    model = randomized(replace(TINY, depth=1))
    rolling = replace(cfg, rolling_cache=True)
    for prefix in (None, torch.randint(0, 50, (2, 1, 2, 3))):
        plain, plain_calls = sampled(model, cfg, 12, prefix)
        rolled, rolled_calls = sampled(model, rolling, 12, prefix)
        assert torch.equal(rolled, plain)
        new_tokens = (12 - (0 if prefix is None else 1)) * 6
        assert rolled_calls == plain_calls == new_tokens


@torch.no_grad()
def teacher_forced(model: GPT, video: torch.Tensor, rolling: bool) -> torch.Tensor:
    """Logits (B, T * f, codebook) of every token of ``video`` (B, T, h, w) given the tokens
    before it, re-encoding the window at each new frame past it or rolling the cache."""
    m, (b, t) = model.cfg, video.shape[:2]
    f, flat = m.frame_tokens, video.reshape(b, -1)
    stream = Stream(model, [[10, 11], [12], [], [13]][:b], 1.0, rolling)
    out = [stream.start(video[:, :0], t if rolling else m.max_frames)]
    for i in range(t * f - 1 if rolling else m.max_frames * f - 1):
        out.append(stream.feed(flat[:, i : i + 1], i)[:, 0])
    for frame in range(m.max_frames, t) if not rolling else ():
        context = video[:, frame - m.max_frames + 1 : frame]
        out.append(stream.start(context, 1))
        for j in range(f - 1):
            out.append(
                stream.feed(video[:, frame].reshape(b, -1)[:, j : j + 1], context.shape[1] * f + j)[:, 0]
            )
    return torch.stack(out, dim=1)


def test_rolling_cache_differs_from_reencoding_in_deeper_networks_by_a_measured_amount():
    """Given the same 12-frame video (4x4 grid, window 3), the next-token distributions of the
    tokens decoded after a slide. Depth 1: equal (float rounding). Depth 2: block 2's held keys
    were computed seeing frames that have since left the window. Measured (random weights,
    logits of std 0.45): mean |logit difference| 0.14, mean KL 0.016 nats, mean total variation
    0.07 (depth 4: 0.16, 0.020, 0.08); the tokens before the first slide are bitwise equal."""
    torch.manual_seed(1)
    video = torch.randint(0, 50, (4, 12, 4, 4))
    slid = TINY.max_frames * 16
    for depth in (1, 2):
        model = randomized(replace(TINY, depth=depth, grid_h=4, grid_w=4))
        again, rolled = teacher_forced(model, video, False), teacher_forced(model, video, True)
        assert torch.equal(again[:, :slid], rolled[:, :slid])
        if depth == 1:
            torch.testing.assert_close(rolled, again, rtol=0, atol=1e-5)
            continue
        p, q = again[:, slid:].log_softmax(-1), rolled[:, slid:].log_softmax(-1)
        kl = (p.exp() * (p - q)).sum(-1).mean().item()
        assert 0.005 < kl < 0.05, kl


def test_rolling_kv_rotates_held_keys_to_their_new_slots():
    """After a roll, the held keys are the unrotated keys of the tokens that stayed, rotated by
    the positions of the slots they moved to; values move with them."""
    torch.manual_seed(0)
    rope = torch.polar(torch.ones(4 * 3, 4), torch.randn(4 * 3, 4))  # 4 frame slots of 3 tokens
    cache = RollingKV(1, 2, 8, 2, 3, 4, rope, torch.float32, "cpu")
    attn = GPT(replace(TINY, dim=16, heads=2)).blocks[0].attn
    x = torch.randn(1, 2 + 11, 16)  # prefix and 11 frame tokens: the 4th frame is partial
    positions = torch.cat([torch.polar(torch.ones(2, 4), torch.zeros(2, 4)), rope[:11]])
    cache.attend(attn, x, positions, 0)
    raw, values = cache.raw[:, :, :11].clone(), cache.values[:, :, 2:13].clone()
    cache.roll(1, 1, 11)  # the second frame leaves; frames 3 and 4 move down
    kept = torch.cat([raw[:, :, :3], raw[:, :, 6:]], dim=2)
    torch.testing.assert_close(cache.keys[:, :, 2:10], apply_rope(kept, rope[:8]), rtol=0, atol=0)
    torch.testing.assert_close(cache.values[:, :, 2:10], torch.cat([values[:, :, :3], values[:, :, 6:]], 2))


# -- speculative Jacobi decoding ------------------------------------------------------------------
@pytest.mark.parametrize("window", [2, 4, 7])
@pytest.mark.parametrize("rolling", [False, True])
def test_jacobi_greedy_gives_exactly_the_greedy_tokens(window, rolling):
    """Windows short, longer than a frame (6 tokens), past the window's slides; with a prefix and
    guidance; never more network calls than one per token."""
    model = randomized()
    for cfg, prefix in [(GREEDY, None), (replace(GREEDY, cfg_scale=3.0), torch.randint(0, 50, (2, 1, 2, 3)))]:
        cfg = replace(cfg, rolling_cache=rolling)
        plain, plain_calls = sampled(model, cfg, 5, prefix)
        jacobi, calls = sampled(model, replace(cfg, jacobi_window=window), 5, prefix)
        assert torch.equal(jacobi, plain)
        assert calls <= plain_calls


def test_jacobi_with_one_token_per_call_is_the_plain_sampler():
    """The Jacobi loop at window 1 draws exactly as the plain sampler, seeded sampling included."""
    model = randomized()
    context = torch.randint(0, 50, (2, 1, 2, 3))
    for cfg in (SAMPLING, GUIDED):
        runs = []
        for decode in (decode_sequential, decode_jacobi):
            stream = Stream(model, CAPTIONS, cfg.cfg_scale, rolling=False)
            runs.append(decode(stream, context, 2, cfg, torch.Generator().manual_seed(5)))
        assert torch.equal(runs[0], runs[1])


def test_jacobi_rejected_guesses_leave_the_cache_as_the_plain_sampler_does():
    """A guess that was not accepted is fed over by the next call: afterwards every cache slot
    up to the last fed token holds what sequential decoding put there."""
    model = randomized()
    caches = []
    for window in (1, 5):
        sampled(model, replace(GREEDY, jacobi_window=window), 3)
        caches.append([(b.attn.cache.k.clone(), b.attn.cache.v.clone()) for b in model.blocks])
    end = 6 + 3 * 6 - 1  # prefix, then every video token but the last
    for (k1, v1), (k5, v5) in zip(*caches):
        torch.testing.assert_close(k5[:, :, :end], k1[:, :, :end], rtol=0, atol=1e-5)
        torch.testing.assert_close(v5[:, :, :end], v1[:, :, :end], rtol=0, atol=1e-5)


@pytest.mark.parametrize("cfg", [SamplingConfig(temperature=1.0), SamplingConfig(temperature=0.7, top_k=4)])
def test_speculative_acceptance_keeps_the_model_distribution(cfg):
    """Guess g accepted with probability p(g), else a draw from p without g: each decided token
    is distributed as the model's p (its filtered, tempered distribution), the second given the
    first."""
    torch.manual_seed(0)
    logits = torch.randn(3, 6) * 1.5  # the model's rows for positions 1, 2 and the one after
    want = [choose_distribution(logits[j], cfg) for j in range(2)]
    guesses = torch.tensor([[int(want[0].argmax()), int(want[1].argsort()[-2])]])
    generator = torch.Generator().manual_seed(0)
    first, second = torch.zeros(6), torch.zeros(6)
    for _ in range(3000):
        run, code = speculate(logits[None], guesses, cfg, generator)
        token = int(guesses[0, 0]) if run >= 1 else int(code)
        first[token] += 1
        if run >= 1:  # the second position was decided in this call: given the accepted first
            second[int(guesses[0, 1]) if run == 2 else int(code)] += 1
    assert (first / first.sum() - want[0]).abs().max() < 0.04
    assert (second / second.sum() - want[1]).abs().max() < 0.05
    many = speculate(logits[None].expand(20000, -1, -1), guesses.expand(20000, -1), cfg, generator)
    assert many[0] == 0  # some row rejects: every row keeps its first token, accepted or redrawn
    freq = torch.bincount(many[1], minlength=6) / 20000
    assert (freq - want[0]).abs().max() < 0.02


def choose_distribution(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """The distribution of ``choose`` for one row of logits, from 20000 draws."""
    draws = choose(logits[None].expand(20000, -1), cfg, torch.Generator().manual_seed(1))
    return torch.bincount(draws, minlength=logits.shape[0]) / 20000


# -- rows in parallel (ZipAR / diagonal) -----------------------------------------------------------
@pytest.mark.parametrize("cfg", [GREEDY, SAMPLING, GUIDED], ids=["greedy", "sampling", "guided"])
def test_rows_in_parallel_at_a_lag_of_the_row_width_are_the_plain_sampler(cfg):
    """Lag = row width (3) or more: one token per call in raster order, the plain tokens exactly,
    through sliding windows and after a prefix."""
    model = randomized()
    prefix = torch.randint(0, 50, (2, 1, 2, 3))
    for lag in (3, 10):
        for given in (None, prefix):
            plain, plain_calls = sampled(model, cfg, 5, given)
            rows, calls = sampled(model, replace(cfg, row_lag=lag), 5, given)
            assert torch.equal(rows, plain) and calls == plain_calls


@torch.no_grad()
def parallel_reference(model: GPT, frames: int, lag: int) -> torch.Tensor:
    """Greedy rows-in-parallel codes (B, frames * h * w) by full forwards: token i, decided at
    step (i // w) * lag + i % w, is the argmax at its raster predecessor p, fed after every
    token decided at an earlier step that precedes p in raster order (p itself, or while p is
    undecided its stand-in: p's place a frame earlier, else its row's latest token)."""
    m = model.cfg
    h, w, f = m.grid_h, m.grid_w, m.frame_tokens
    prefix = prefix_ids(model.vocab, CAPTIONS, m.text_len)
    positions, p0 = sequence_positions(m.text_len, frames, h, w, with_eov=False), prefix.shape[1]
    codes = torch.zeros(2, frames * f, dtype=torch.long)
    step = lambda i: (i // w) * lag + i % w  # noqa: E731
    for i in sorted(range(frames * f), key=step):
        seen = [j for j in range(i - 1) if step(j) < step(i)]
        if i == 0:
            ids, where = prefix, positions[:p0]
        else:
            stand_in = i - 1
            if step(i - 1) >= step(i):  # undecided
                row = (i - 1) // w
                earlier = i - 1 - f
                stand_in = (
                    earlier if earlier >= 0 and step(earlier) < step(i) else row * w + step(i) - 1 - row * lag
                )
            ids = torch.cat([prefix, codes[:, seen] + 300, codes[:, [stand_in]] + 300], dim=1)
            where = torch.cat(
                [positions[:p0], positions[p0 + torch.tensor(seen + [i - 1], dtype=torch.long)]]
            )
        codes[:, i] = model(ids, where)[:, -1, 300:350].argmax(-1)
    return codes


@pytest.mark.parametrize("lag", [1, 2])
def test_rows_in_parallel_see_the_decided_tokens_before_them_in_raster_order(lag):
    """A one-block network (keys of a token alone): the cached, masked, out-of-order decoding
    equals the full-forward reference of what each token may see; the calls are
    (rows - 1) * lag + w, against one per token."""
    model = randomized(replace(TINY, depth=1))
    codes, calls = sampled(model, replace(GREEDY, row_lag=lag), 3)
    assert torch.equal(codes.flatten(1), parallel_reference(model, 3, lag))
    assert calls == parallel_calls(3, 2, 3, lag) == 5 * lag + 3 < 18


# -- the config fields and the generator ---------------------------------------------------------
def test_new_sampling_fields_validate_and_reach_the_harness_settings():
    with pytest.raises(ValueError, match="jacobi_window"):
        SamplingConfig(jacobi_window=0)
    with pytest.raises(ValueError, match="rolling_cache"):
        SamplingConfig(rolling_cache=True, reencode_context=True)
    for bad in (dict(row_lag=-1), dict(row_lag=2, jacobi_window=4), dict(row_lag=2, rolling_cache=True)):
        with pytest.raises(ValueError, match="row_lag"):
            SamplingConfig(**bad)
    from vtlm.eval.generators import SamplingSettings

    settings = SamplingSettings(
        gpt=SamplingConfig(rolling_cache=True),
        sweeps={"gpt": {"jacobi_window": [4], "rolling_cache": [False]}},
    )
    assert settings.gpt.rolling_cache and dataclasses.asdict(settings.gpt)["jacobi_window"] == 1
    with pytest.raises(ValueError, match="rolling"):
        Stream(randomized(replace(TINY, max_frames=1)), CAPTIONS, 1.0, rolling=True)
    one = randomized(replace(TINY, max_frames=1))  # nothing to roll: the option changes nothing
    assert torch.equal(sampled(one, replace(GREEDY, rolling_cache=True), 3)[0], sampled(one, GREEDY, 3)[0])


def test_generator_counts_the_calls_it_makes(tmp_path):
    """function_evaluations: one call per new token, rolling or not (the count the generator
    recorded agrees); Jacobi's is the count its last generate of that length made."""
    from vtlm.bench.assets import generator_dirs
    from vtlm.generate.interface import load_generator

    dirs = generator_dirs(tmp_path, "debug", "debug", resolution=32, num_frames=5)  # 2 latent frames of 4x4
    for sampling in (SamplingConfig(), SamplingConfig(rolling_cache=True, cfg_scale=2.0)):
        gen = load_generator(dirs.gpt, sampling=sampling)
        assert gen.function_evaluations(13, 1) == (4 - 1) * 16  # 13 frames: 4 latent, 1 given
        gen.generate(["a red ball"], 13, torch.zeros(1, 3, 1, 32, 32))
        assert list(gen.counted.values()) == [(4 - 1) * 16]
    jacobi = load_generator(dirs.gpt, sampling=SamplingConfig(temperature=0, jacobi_window=4))
    assert jacobi.function_evaluations(13) == 4 * 16  # before any run: the sequential bound
    plain = load_generator(dirs.gpt, sampling=GREEDY)
    assert torch.equal(jacobi.generate(["a red ball"], 13), plain.generate(["a red ball"], 13))
    assert jacobi.function_evaluations(13) == next(iter(jacobi.counted.values())) <= 4 * 16
    rows = load_generator(dirs.gpt, sampling=SamplingConfig(row_lag=2))  # windows of 2 frames: 8 rows, then 4
    rows.generate(["a red ball"], 13)
    assert rows.function_evaluations(13) == next(iter(rows.counted.values())) == (7 * 2 + 4) + 2 * (3 * 2 + 4)


# -- the compiled step ---------------------------------------------------------------------------
def test_compiled_step_gives_the_eager_logits_tokens_and_counts(monkeypatch):
    """On a CPU, ``compiled`` one-token steps run through the exported, ahead-of-time compiled
    step (really called, built once for the batch shape); logits match the eager step's to float
    rounding, and sampled tokens, network calls and FLOPs are the same, with guidance, past the
    window (re-encoded prefills stay eager). A weight changed in place retires the build."""
    import vtlm.gpt.exported as exported

    builds, steps = [], [0]
    real_init, real_call = exported.ExportedStep.__init__, exported.ExportedStep.__call__

    def counting_init(self, *args):
        builds.append(args[1].shape)
        real_init(self, *args)

    def counting_call(self, *args):
        steps[0] += 1
        return real_call(self, *args)

    monkeypatch.setattr(exported.ExportedStep, "__init__", counting_init)
    monkeypatch.setattr(exported.ExportedStep, "__call__", counting_call)
    model = randomized()
    before = model.meter.total
    eager, calls = sampled(model, GUIDED, 7)  # 7 latent frames through a window of 3
    eager_flops, before = model.meter.total - before, model.meter.total
    compiled, calls_made = sampled(model, replace(GUIDED, compile=True), 7)
    assert torch.equal(compiled, eager) and calls_made == calls
    assert model.meter.total - before == eager_flops
    assert 0 < steps[0] < calls_made  # the one-token steps; the prefills ran eagerly
    assert builds == [(4, 1)]  # 2 captions, each with and without its caption (guidance)
    ids = prefix_ids(model.vocab, CAPTIONS + CAPTIONS, TINY.text_len)
    positions = sequence_positions(TINY.text_len, TINY.max_frames, 2, 3, with_eov=False)
    n, token = ids.shape[1], torch.tensor([[300], [301], [302], [303]])
    model.setup_caches(4, model.blocks[0].attn.cache.length)  # the caches kept as they are
    with torch.no_grad():
        model(ids, positions[:n], start=0)
        eager_logits = model(token, positions[n : n + 1], start=n)
        compiled_logits = model(token, positions[n : n + 1], start=n, compiled=True)  # the same slot
    assert compiled_logits.shape == eager_logits.shape == (4, 1, model.vocab.size)
    torch.testing.assert_close(compiled_logits, eager_logits, rtol=1e-5, atol=1e-5)
    assert len(builds) == 1  # the same shapes, caches and weights: the build again
    (build,) = model.exported.values()
    assert build.fits(model, token, positions[n : n + 1])
    with torch.no_grad():
        model.blocks[1].mlp.w2.weight.mul_(1.5)  # in place, as an optimizer step would
    assert not build.fits(model, token, positions[n : n + 1])  # the next compiled call rebuilds


def test_compiled_step_without_caches_says_what_to_do():
    model = randomized()
    with pytest.raises(RuntimeError, match="call setup_caches first"), torch.no_grad():
        model(torch.tensor([[300]]), torch.zeros(1, 3, dtype=torch.long), start=0, compiled=True)
    assert not model.exported


# -- the static-shape step (CUDA graphs) ---------------------------------------------------------
def _static_and_dynamic_steps(model: GPT, device: str, steps: int, graphed: bool = False):
    """(logits of the static-shape step, logits of the plain step) for ``steps`` one-token steps
    after a prefill, batch 2, on two copies of ``model`` fed the same ids."""
    from vtlm.gpt.model import _one_token

    ids = prefix_ids(model.vocab, CAPTIONS, TINY.text_len).to(device)
    positions = sequence_positions(TINY.text_len, TINY.max_frames, 2, 3, with_eov=False).to(device)
    n = ids.shape[1]
    copies = [model, GPT(model.cfg).to(device).eval()]
    copies[1].load_state_dict(model.state_dict())
    outputs = ([], [])
    tokens = torch.randint(300, 350, (steps, 2, 1), generator=torch.Generator().manual_seed(0)).to(device)
    with torch.no_grad():
        for copy_ in copies:
            copy_.setup_caches(2, n + 12)  # one length: a second run reuses the caches
            copy_(ids, positions[:n], start=0)
        for i in range(steps):
            at, token, where = n + i, tokens[i], positions[n + i : n + i + 1]
            if graphed:
                outputs[0].append(copies[0](token, where, start=at, compiled=True))
            else:
                outputs[0].append(_one_token(copies[0], token, where, torch.tensor([at], device=device)))
            outputs[1].append(copies[1](token, where, start=at))
    return torch.cat(outputs[0], 1), torch.cat(outputs[1], 1)


def test_static_shape_step_gives_the_plain_steps_logits():
    """A tensor ``start`` (the CUDA-graph step's static shapes: the cache written with
    index_copy_, attention over all of it with the later slots masked) gives the logits of the
    plain step at every position, with stale slots left in the cache from an earlier, longer run."""
    model = randomized()
    static, plain = _static_and_dynamic_steps(model, "cpu", 6)
    assert static.shape == plain.shape == (2, 6, model.vocab.size)
    torch.testing.assert_close(static, plain, rtol=1e-5, atol=1e-5)
    again, _ = _static_and_dynamic_steps(model, "cpu", 3)  # the caches reused: stale slots past 3
    torch.testing.assert_close(again, plain[:, :3], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="mask: a static-shape step"):
        model.blocks[0].attn(torch.randn(2, 1, model.cfg.dim), model.rotations(torch.zeros(1, 3)),
                             torch.tensor([3]), mask=torch.ones(1, 4, dtype=torch.bool))  # fmt: skip


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphed_step_gives_the_eager_logits_on_gpu():
    """On CUDA, ``compiled`` one-token steps run as a replayed CUDA graph (``graphed_step``):
    the logits of the eager step at every position, float32 SDPA."""
    model = randomized(replace(TINY, attention="sdpa")).cuda()
    graphed, plain = _static_and_dynamic_steps(model, "cuda", 8, graphed=True)
    torch.testing.assert_close(graphed, plain, rtol=1e-4, atol=1e-4)
