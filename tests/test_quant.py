"""Int8 weight-only decoding: the layer against its float original, the model copy, and the
sampler and generator options that use it."""

from dataclasses import replace

import pytest
import torch
import torch.nn as nn
from test_gpt_decoding import CAPTIONS, GREEDY, randomized

from vtlm.gpt.sampling import SamplingConfig, sample_codes
from vtlm.gpt.stream import network_calls
from vtlm.layers.quant import Int8Linear, int8_copy, is_int8, weight_bytes


@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_is_the_float_layer_up_to_half_a_step_per_weight(bias):
    torch.manual_seed(0)
    layer = nn.Linear(64, 48, bias=bias)
    x = torch.randn(5, 7, 64)
    quantized = Int8Linear(layer)
    assert quantized.weight.dtype == torch.int8 and quantized.scale.shape == (48,)
    with torch.no_grad():
        exact, approx = layer(x), quantized(x)
    assert approx.shape == exact.shape == (5, 7, 48) and approx.dtype == torch.float32
    # each weight is off by at most half its row's step: |error| <= sum_k |x_k| * scale / 2
    bound = x.abs().sum(-1, keepdim=True) * quantized.scale / 2
    assert ((approx - exact).abs() <= bound + 1e-5).all()
    assert 0 < (approx - exact).abs().max() < 0.02 * exact.abs().max()  # rounded, but close
    # a row's largest weight is exactly +-127 steps
    assert quantized.weight.abs().amax(dim=1).eq(127).all()


def test_int8_copy_replaces_every_linear_and_leaves_the_model_alone():
    model = randomized()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = int8_copy(model)
    assert is_int8(quantized) and not is_int8(model)
    assert not any(isinstance(m, nn.Linear) for m in quantized.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # a quarter of the bytes of every linear weight (plus one scale per row)
    # a quarter of the bytes of every linear weight (a head tied to the embedding too; the
    # embedding itself stays float), plus one scale per row
    weights = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear)}
    rows = sum(m.out_features for m in quantized.modules() if isinstance(m, Int8Linear))
    assert weight_bytes(quantized) == weight_bytes(model) - 3 * sum(weights.values()) + 4 * rows
    assert weight_bytes(model) < sum(p.numel() * 4 for p in model.parameters())  # no untied table
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    positions = torch.arange(5)[:, None].expand(-1, 3)
    with torch.no_grad():
        exact, approx = model(ids, positions), quantized(ids, positions)
    assert (approx - exact).abs().max() < 0.05 * exact.abs().max()


def test_sampling_with_int8_weights_uses_the_int8_copy_and_counts_its_calls():
    model = randomized()
    int8 = replace(GREEDY, weights="int8")
    with network_calls(model) as calls:
        codes = sample_codes(model, CAPTIONS, 4, int8, None, torch.Generator().manual_seed(0))
    again = sample_codes(int8_copy(model), CAPTIONS, 4, int8, None, torch.Generator().manual_seed(0))
    assert torch.equal(codes, again) and calls[0] > 0  # the copy made inside keeps the count
    assert not is_int8(model)
    with pytest.raises(ValueError, match="weights"):
        SamplingConfig(weights="int4")


def test_the_gpt_generator_keeps_one_int8_network_for_its_sampling(tmp_path):
    from vtlm.bench.assets import generator_dirs
    from vtlm.generate.interface import load_generator

    dirs = generator_dirs(tmp_path, "debug", "debug", resolution=32, num_frames=5)
    gen = load_generator(dirs.gpt, sampling=replace(GREEDY, weights="int8"))
    network = gen.network()
    assert is_int8(network) and not is_int8(gen.model) and gen.network() is network
    video = gen.generate(["a red ball"], 5)
    assert video.shape == (1, 3, 5, 32, 32) and list(gen.counted.values()) == [2 * 16]
    plain = load_generator(dirs.gpt, sampling=GREEDY)
    assert plain.network() is plain.model
