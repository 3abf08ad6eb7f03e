"""Tokenizer workloads: vtlm's causal tokenizer beside magvit2-pytorch's ``VideoTokenizer``.

Same shape for both: 17x64x64 clips of the built-in shapes data, 4x temporal and 8x spatial
compression (17x64x64 -> 5x8x8 codes), LFQ with 2^10 codes, no GAN, no perceptual loss,
batch 2, AdamW at 1e-3. Reported: parameters, train / encode / decode clips per second, and
reconstruction PSNR on held-out clips after the same wall-clock training budget.
"""

from __future__ import annotations

import sys
import time
import types

import torch

from vtlm.common.pixel_metrics import psnr_per_frame
from vtlm.data.synthetic import ShapesConfig, SyntheticConfig, SyntheticDataset
from vtlm.tokenizer.config import TokenizerConfig
from vtlm.tokenizer.model import VideoTokenizer
from vtlm.tokenizer.objective import LossConfig, TokenizerObjective

from .timing import measure

VTLM_CONFIG = TokenizerConfig(
    spatial_downsample=8,
    temporal_downsample=4,
    patch_size=2,
    base_channels=24,
    channel_mult=(1, 2, 4),
    quantizer="lfq",
    lfq_bits=10,
)


class _Unavailable:
    """Stands in for any torchvision object: constructing it works, using it raises."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError("torchvision is not loadable beside this torch build")


class _Placeholder(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unavailable


def _import_magvit2():
    """magvit2-pytorch imports torchvision for its VGG loss and image transforms (unused here).
    PyPI's torchvision does not load beside the CPU build of torch, so the import runs against
    placeholder modules, which are removed again afterwards so that no other library sees them."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        names = ("torchvision", "torchvision.models", "torchvision.transforms", "torchvision.utils")
        modules = {name: _Placeholder(name) for name in names}
        modules["torchvision.models"].VGG16_Weights = type("VGG16_Weights", (), {"DEFAULT": None})
        for name in names[1:]:
            setattr(modules["torchvision"], name.split(".")[1], modules[name])
        sys.modules.update(modules)
        try:
            import magvit2_pytorch
        finally:
            for name in names:
                sys.modules.pop(name, None)
        return magvit2_pytorch
    import magvit2_pytorch

    return magvit2_pytorch


def build_peer():
    """magvit2-pytorch's VideoTokenizer at the same compression and codebook."""
    PeerTokenizer = _import_magvit2().VideoTokenizer

    layers = ("residual", "compress_space", "residual", "compress_space", "residual", "compress_space")
    layers += ("residual", "compress_time", "residual", "compress_time")
    return PeerTokenizer(
        image_size=64,
        layers=layers,
        init_dim=32,
        max_dim=128,
        codebook_size=1024,
        use_gan=False,
        perceptual_loss_weight=0.0,
        flash_attn=False,
    )


def _clips(split: str, count: int) -> torch.Tensor:
    data = SyntheticDataset(
        SyntheticConfig(shapes=ShapesConfig(resolution=64, num_frames=17), split=split, num_clips=count)
    )
    return torch.stack([data[i]["video"] for i in range(count)])


class _Runner:
    """One tokenizer behind the three calls the bench times."""

    def __init__(self, name: str, model: torch.nn.Module, train_loss, encode, decode):
        self.name, self.model = name, model
        self.train_loss, self.encode, self.decode = train_loss, encode, decode
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train_step(self, clips: torch.Tensor) -> None:
        self.model.train()
        loss = self.train_loss(clips)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def vtlm_runner(config: TokenizerConfig = VTLM_CONFIG, device: str | torch.device = "cpu") -> _Runner:
    """vtlm's tokenizer of ``config`` on ``device`` with the L1 reconstruction objective."""
    model = VideoTokenizer(config).to(device)
    objective = TokenizerObjective(LossConfig(recon="l1")).to(device)

    def train_loss(clips):
        recon, quantized = model(clips)
        return objective.generator_loss(clips, recon, quantized, 0, model.decoder.last_layer)[0]

    return _Runner("vtlm", model, train_loss, model.encode, model.decode)


def _peer_runner(peer) -> _Runner:
    def train_loss(clips):
        out = peer(clips, return_loss=True)
        return out[0] if isinstance(out, tuple) else out

    return _Runner("magvit2", peer, train_loss, peer.tokenize, peer.decode_from_code_indices)


@torch.no_grad()
def _psnr(runner: _Runner, clips: torch.Tensor) -> float:
    runner.model.eval()
    values = [
        psnr_per_frame(runner.decode(runner.encode(clips[i : i + 2])).clamp(-1, 1), clips[i : i + 2]).mean()
        for i in range(0, len(clips), 2)
    ]
    return float(torch.stack(values).mean())


def run_tokenizer_bench(quick: bool = False, train_seconds: float = 120.0) -> tuple[list[dict], list[str]]:
    """Rows for the bench table, and notes (e.g. a peer that could not run)."""
    notes = []
    runners = [vtlm_runner()]
    try:
        runners.append(_peer_runner(build_peer()))
    except Exception as err:  # not installed, or failed to build: the bench still completes
        notes.append(f"magvit2-pytorch not run: {type(err).__name__}: {err}")
    batch, held_out = _clips("train", 2), _clips("val", 4 if quick else 16)
    budget, repeats = (5.0, 2) if quick else (train_seconds, 3)
    results: dict[str, dict] = {}
    for runner in runners:
        torch.manual_seed(0)
        params = sum(p.numel() for p in runner.model.parameters())
        train = measure(
            "train", lambda r=runner: r.train_step(batch), 2, "clips/s", warmup=1, repeats=repeats
        )
        runner.model.eval()
        codes = runner.encode(batch)
        encode = measure("encode", lambda r=runner: r.encode(batch), 2, "clips/s", warmup=1, repeats=repeats)
        decode = measure(
            "decode", lambda r=runner, c=codes: r.decode(c), 2, "clips/s", warmup=1, repeats=repeats
        )
        train_set = _clips("train", 64 if not quick else 4)
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < budget:
            runner.train_step(train_set[(2 * steps) % len(train_set) :][:2])
            steps += 1
        results[runner.name] = {
            "params": params,
            "train": train,
            "encode": encode,
            "decode": decode,
            "steps": steps,
            "psnr": _psnr(runner, held_out),
        }
    ours = results["vtlm"]
    shape = {"clip": "17x64x64", "codes": "5x8x8", "codebook": 1024, "batch": 2, "budget_s": budget}
    rows = []
    for key in ("train", "encode", "decode"):
        peers = {name: r[key].median_rate for name, r in results.items() if name != "vtlm"}
        rows.append(
            {
                "id": f"tokenizer_{key}",
                "workload": f"tokenizer {key} 17x64x64 -> 5x8x8, b2",
                "unit": "clips/s",
                "vtlm": ours[key].median_rate,
                "vtlm_spread": ours[key].spread,
                "peers": peers,
                "shape": shape,
                "params": {name: r["params"] for name, r in results.items()},
            }
        )
    peers = {name: r["psnr"] for name, r in results.items() if name != "vtlm"}
    rows.append(
        {
            "id": "tokenizer_psnr",
            "workload": f"tokenizer PSNR after {budget:.0f} s of training",
            "unit": "dB",
            "vtlm": ours["psnr"],
            "peers": peers,
            "shape": shape,
            "steps": {name: r["steps"] for name, r in results.items()},
        }
    )
    return rows, notes
