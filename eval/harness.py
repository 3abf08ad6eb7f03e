"""The evaluation harness: generators through named protocols, scored the same way, reported.

``run_eval`` takes model directories (a GPT, a diffusion model, ... sharing one tokenizer),
runs each protocol for every generator (and, on the sweep protocol, every sweep variant) over
several seeds, and writes OUT/results.json (every number with its settings), sample grids
and the Markdown / HTML report. Figures are means over clips and seeds with bootstrap
intervals over clips, or best-of-N where named; set-level distances (classifier Frechet
distance, FVD) are per seed with an interval over seeds. Generators are also compared pairwise
on the same clips and seeds (``comparisons``: :mod:`vtlm.eval.stats.paired`).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vtlm.common.machine import machine
from vtlm.data.synthetic import SyntheticConfig
from vtlm.tokenizer.model import VideoTokenizer

from .cost import measure_generation
from .features import FeatureSets
from .floors import Floors
from .generation import Rollout, extend, generate_batched
from .generators import (
    SamplingSettings,
    Variant,
    check_shared_tokenizer,
    default_variant,
    describe,
    names_for,
    sweep_variants,
)
from .metrics.likelihood import bits_per_video_token
from .protocols.clips import HeldOut, load_held_out, synthetic_from_run
from .protocols.leakage import check_leakage
from .protocols.registry import Protocol, fit_to_stride, get_protocol
from .samples import write_grid
from .scoring import METRICS, score_clips
from .stats.aggregate import Aggregator
from .stats.ceiling import add_relative_to_ceiling
from .stats.paired import compare_results, compare_variants, per_clip_block
from .stats.summary import drift_block, training_block


@dataclass
class EvalConfig:
    """What to run, on what data, how many times, and how figures are summarized."""

    # Protocol names (see vtlm.eval.protocols.registry.PROTOCOLS).
    protocols: list[str] = field(
        default_factory=lambda: ["shapes-recon", "shapes-t2v", "shapes-cont5", "shapes-rollout"]
    )
    # Protocol whose sampling sweeps (SamplingSettings.sweeps) are also run; a rollout protocol
    # runs them by both strategies (the anti-drift options' drift curves beside the defaults').
    sweep_protocol: str | None = "shapes-cont5"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # How rollout protocols extend a clip past the training length (both: their drift compared).
    rollout_strategies: list[str] = field(default_factory=lambda: ["sliding", "chaining"])
    # Held-out clips of every protocol (None: the protocol's own count). Built-in data is
    # generated, so any count works; a real test set refuses more clips than it holds.
    num_clips: int | None = None
    # A cap on every protocol's samples per clip (None: the protocol's own).
    samples_per_clip: int | None = None
    # Per-protocol clip counts, over num_clips (e.g. fewer clips for the long rollouts).
    protocol_clips: dict[str, int] = field(default_factory=dict)
    resolution: int | None = None
    # Real data for folder / Moving MNIST protocols: a folder or mnist_test_seq.npy.
    data: str | None = None
    # Built-in data settings (None: what the tokenizer was trained on, from its run.yaml).
    synthetic: SyntheticConfig | None = None
    caption: str = "descriptive"
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    batch_size: int = 16
    confidence: float = 0.95
    bootstrap: int = 2000
    # The Kinetics-400 I3D TorchScript file for FVD (None: FVD is reported as not computed).
    i3d: str | None = None
    # Where the built-in data's attribute classifier is cached (trained once per config).
    classifier_cache: str = "runs/eval_cache"
    # Training steps of that classifier (None: its default; fewer only for quick checks).
    classifier_steps: int | None = None
    # Frames of the clips it judges (longer videos are judged window by window).
    classifier_frames: int = 17
    # Timed generation calls per cost figure (after a warm-up).
    cost_repeats: int = 2
    # Protocols whose generation cost is measured (None: every one; a sweep needs only one).
    cost_protocols: list[str] | None = None
    # The untimed warm-up calls of each cost figure. The harness measures a generator's cost
    # right after it generated the protocol's clips, so it is warm either way; off saves a
    # generation per figure (the first timed call then also gives the peak memory).
    cost_warmup: bool = True
    # Clips shown in each sample grid.
    grid_rows: int = 4
    fps: float = 8.0
    device: str = "cpu"
    # Refuse held-out clips the tokenizer or a generator trained on (vtlm.eval.protocols.leakage).
    # Never turn off for reported numbers.
    leakage_check: bool = True
    # Write report.md / report.html (results.json and the sample grids are always written); a
    # sweep's points, gathered into the sweep's own report, can skip theirs.
    report: bool = True
    # Set sizes of the feature distances' real-vs-real floor (vtlm.eval.floors), 2n clips each.
    floor_sizes: list[int] = field(default_factory=lambda: [8, 16, 32, 64])

    def __post_init__(self):
        counts = {
            "num_clips": self.num_clips,
            **{f"protocol_clips.{k}": v for k, v in self.protocol_clips.items()},
        }
        for name, count in counts.items():
            if count is not None and count < 1:
                raise ValueError(f"{name}: expected at least 1 held-out clip, got {count}")
        if not self.rollout_strategies or set(self.rollout_strategies) - {"sliding", "chaining"}:
            raise ValueError(
                f"rollout_strategies: expected some of sliding, chaining, got {self.rollout_strategies}"
            )


def _protocol(name: str, cfg: EvalConfig, synthetic: SyntheticConfig | None) -> Protocol:
    p = get_protocol(name)
    changes = {}
    if name in cfg.protocol_clips or cfg.num_clips:
        changes["num_clips"] = cfg.protocol_clips.get(name, cfg.num_clips)
    if cfg.samples_per_clip:
        changes["samples_per_clip"] = min(cfg.samples_per_clip, p.samples_per_clip)
    if cfg.resolution:
        changes["resolution"] = cfg.resolution
    elif p.dataset in ("shapes", "digits") and synthetic is not None:
        changes["resolution"] = getattr(synthetic, p.dataset).resolution
    return p.replace(**changes)


class Harness:
    """One evaluation run: shared data, scorers and aggregation for every generator."""

    def __init__(self, cfg: EvalConfig, tokenizer: VideoTokenizer, synthetic: SyntheticConfig | None):
        self.cfg, self.tokenizer, self.synthetic = cfg, tokenizer, synthetic
        self.stride = tokenizer.cfg.temporal_downsample
        self.agg = Aggregator(cfg.confidence, cfg.bootstrap)
        self.features = FeatureSets(
            cfg.i3d, cfg.classifier_cache, synthetic, cfg.device, cfg.classifier_steps, cfg.classifier_frames
        )
        self.rows: list[dict] = []

    def _videos(
        self,
        variant: Variant | None,
        protocol: Protocol,
        data: HeldOut,
        seed: int,
        sample: int,
        strategy: str | None,
    ):
        frames = fit_to_stride(protocol, self.stride)
        true = data.video
        if protocol.kind == "reconstruction" or variant is None:  # the tokenizer's own reconstruction
            with torch.no_grad():
                out = []
                for start in range(0, len(true), self.cfg.batch_size):
                    clips = true[start : start + self.cfg.batch_size].to(self.cfg.device)
                    out.append(self.tokenizer.decode(self.tokenizer.encode(clips)).float().cpu())
                return torch.cat(out)
        prefix = true[:, :, : frames["context"]] if frames["context"] else None
        captions = variant.model.fit_captions(data.captions)
        if protocol.kind == "rollout":
            return extend(
                variant.model,
                strategy,
                captions,
                prefix,
                frames["generate"],
                protocol.clip_frames,
                seed,
                sample,
                self.cfg.batch_size,
            )
        return generate_batched(
            variant.model, captions, frames["generate"], prefix, seed, sample, self.cfg.batch_size
        )

    def run(self, protocol: Protocol, data: HeldOut, variant: Variant | None, strategy: str | None) -> dict:
        """Generate and score one (protocol, variant[, strategy]) over seeds and samples."""
        cfg, first = self.cfg, protocol.first_scored
        reconstruction = protocol.kind == "reconstruction" or variant is None  # deterministic
        samples = 1 if reconstruction else protocol.samples_per_clip
        seeds = cfg.seeds[:1] if reconstruction else cfg.seeds
        true = data.video[:, :, : protocol.total_frames]
        per_metric: dict[str, list] = {}
        examples, self.features.fake = None, []
        started = time.perf_counter()
        for seed in seeds:
            per_seed: dict[str, list] = {}
            for j in range(samples):
                video = self._videos(variant, protocol, data, seed, j, strategy)[
                    :, :, : protocol.total_frames
                ]
                examples = video if examples is None else examples
                scores = score_clips(video, true, first, data.labels, protocol.dataset == "shapes")
                scores.update(self.features.per_clip(video, data, protocol))
                for key, value in scores.items():
                    per_seed.setdefault(key, []).append(value)
                self.features.add(seed, video, protocol)
            for key, values in per_seed.items():
                per_metric.setdefault(key, []).append(np.stack(values))
        seconds = time.perf_counter() - started
        arrays = {key: np.stack(v) for key, v in per_metric.items()}  # (S, J, N[, F])
        metrics, curves = {}, {}
        for key, values in arrays.items():
            unit, higher = METRICS.get(key, ("", True))
            metrics[key] = self.agg.figure(values, unit, bool(higher))
            if higher is None:  # no better direction (a ratio to the truth's): no arrow
                del metrics[key]["higher_is_better"]
            if values.ndim == 4:
                frames = list(range(first, first + values.shape[3]))
                if key == "caption_adherence":  # per classifier window along a rollout: its first frame
                    frames = self.features.window_starts(values.shape[3])
                curves[key] = self.agg.curve(values, frames, unit, higher)
        if samples > 1:
            for key in ("psnr", "ssim", "mse"):
                unit, higher = METRICS[key]
                metrics[f"{key}_best_of_{samples}"] = self.agg.best_of(arrays[key], unit, higher)
        metrics.update(self.features.set_level(data, protocol, self.agg))
        if variant is not None and variant.kind == "gpt" and protocol.kind == "text_to_video":
            bits = bits_per_video_token(variant.model, true, data.captions, cfg.batch_size)
            metrics["bits_per_video_token"] = self.agg.figure(bits[None, None], "bits", False)
        return {
            "metrics": metrics,
            "curves": curves,
            "drift": drift_block(curves),
            "per_clip": per_clip_block(arrays),  # headline metrics (S, N), for paired comparisons
            "eval_seconds": round(seconds, 2),
            "examples": examples,
        }

    def cost(self, variant: Variant, protocol: Protocol, data: HeldOut, strategy: str | None = None) -> dict:
        """Cost of one clip at the protocol's full length; a rollout's through ``extend`` by its strategy."""
        frames = fit_to_stride(protocol, self.stride)
        prefix = data.video[:1, :, : frames["context"]] if frames["context"] else None
        generator = variant.model
        if strategy is not None:
            generator = Rollout(variant.model, strategy, protocol.clip_frames, self.cfg.batch_size)
        return measure_generation(
            generator,
            variant.model.fit_captions(data.captions[:1]),
            frames["generate"],
            prefix,
            0,
            self.cfg.cost_repeats,
            self.cfg.fps,
            warmup=self.cfg.cost_warmup,
        )


def run_eval(paths: list[str], cfg: EvalConfig, out: str | os.PathLike, command: str = "") -> dict:
    """Evaluate the generators in ``paths`` (model directories) and write the report to ``out``."""
    from .report import results_json, write_report

    unknown = sorted((set(cfg.protocol_clips) | set(cfg.cost_protocols or ())) - set(cfg.protocols))
    if unknown:
        raise ValueError(
            f"protocol_clips, cost_protocols: {unknown} not among the protocols run ({cfg.protocols})"
        )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = names_for(paths)
    described = {name: describe(path) for name, path in zip(names, paths)}
    tokenizer_info = check_shared_tokenizer(described)
    variants = [default_variant(n, p, cfg.sampling, cfg.device) for n, p in zip(names, paths)]
    tokenizer = variants[0].model.tokenizer
    synthetic = cfg.synthetic or synthetic_from_run(tokenizer_info["dir"])
    protocols = {name: _protocol(name, cfg, synthetic) for name in cfg.protocols}
    leakage = {"checked": False, "note": "leakage_check off: not for reported numbers"}
    if cfg.leakage_check:
        trained = dict(zip(names, paths))
        leakage = check_leakage(
            protocols,
            synthetic,
            cfg.data,
            tokenizer,
            tokenizer_info["dir"],
            trained,
            cfg.batch_size,
            cfg.device,
        )
    harness = Harness(cfg, tokenizer, synthetic)
    offset = max((p.num_clips for p in protocols.values()), default=0)  # held-out: clips 0..offset-1
    floors = Floors(harness.features, synthetic, cfg.floor_sizes, offset)
    results: dict = {
        "vtlm_eval": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "machine": machine(),
        "tokenizer": tokenizer_info,
        "settings": {
            "seeds": cfg.seeds,
            "confidence": cfg.confidence,
            "bootstrap": cfg.bootstrap,
            "ssim": {"window": 11, "sigma": 1.5},
            "data_range": 2.0,
            "caption": cfg.caption,
            "synthetic": dataclasses.asdict(synthetic) if synthetic else None,
            "fvd": harness.features.fvd_settings(),
            "classifier": harness.features.classifier_settings(),
            "sampling": {
                "gpt": dataclasses.asdict(cfg.sampling.gpt),
                "diffusion": dataclasses.asdict(cfg.sampling.diffusion),
                "forcing": dataclasses.asdict(cfg.sampling.forcing),
                "maskgit": dataclasses.asdict(cfg.sampling.maskgit),
            },
        },
        "generators": {
            v.generator: {
                **described[v.generator],
                "sampling": v.settings,
                "training": training_block(described[v.generator]),
            }
            for v in variants
        },
        "protocols": {},
        "results": [],
        "sample_grids": [],
        "not_computed": harness.features.not_computed() + leakage.get("unverified", []),
        "leakage": leakage,
        "floors": {},
    }
    for name, protocol in protocols.items():
        fit = fit_to_stride(protocol, harness.stride)
        print(
            f"[eval] {name}: {protocol.kind}, {protocol.num_clips} clips, {fit['note'] or 'exact frame counts'}",
            flush=True,
        )
        data = load_held_out(
            protocol.replace(total_frames=max(fit["generate"], protocol.total_frames)),
            synthetic,
            cfg.data,
            cfg.caption,
            protocol.clip_frames if protocol.kind == "rollout" else None,
        )
        results["protocols"][name] = {**protocol.to_dict(), "frames_used": fit, "data": data.source}
        columns: dict[str, torch.Tensor] = {}
        if protocol.kind == "reconstruction":
            row = harness.run(protocol, data, None, None)
            columns["reconstruction"] = row.pop("examples")
            results["results"].append(
                {"protocol": name, "generator": "tokenizer", "variant": "default", **row}
            )
        else:
            ceiling = harness.run(protocol, data, None, None)  # the tokenizer's ceiling, same clips
            ceiling.pop("examples")
            results["results"].append(
                {"protocol": name, "generator": "tokenizer", "variant": "ceiling", **ceiling}
            )
            floor = floors.protocol(protocol, data, protocol.num_clips * protocol.samples_per_clip)
            if floor is not None:
                results["floors"][name] = floor
            todo = list(variants)
            if name == cfg.sweep_protocol:
                todo += [s for v in variants for s in sweep_variants(v, cfg.sampling)]
            strategies = list(cfg.rollout_strategies) if protocol.kind == "rollout" else [None]
            for variant in todo:
                for strategy in strategies:
                    label = variant.label if strategy is None else strategy
                    if strategy is not None and variant.label != "default":
                        label = f"{strategy}, {variant.label}"  # a sweep point on a rollout
                    row = harness.run(protocol, data, variant, strategy)
                    print(f"[eval]   {variant.generator} {label}: {row['eval_seconds']:.1f} s", flush=True)
                    if variant.label == "default":
                        columns[f"{variant.generator} ({strategy})" if strategy else variant.generator] = (
                            row.pop("examples")
                        )
                    row.pop("examples", None)
                    if cfg.cost_protocols is None or name in cfg.cost_protocols:
                        row["cost"] = harness.cost(variant, protocol, data, strategy)
                    results["results"].append(
                        {
                            "protocol": name,
                            "generator": variant.generator,
                            "variant": label,
                            "settings": variant.settings,
                            **row,
                        }
                    )
        results["sample_grids"].append(
            write_grid(out_dir, name, protocol, data, columns, cfg.grid_rows, cfg.fps)
        )
    add_relative_to_ceiling(results["results"])
    results["comparisons"] = compare_results(results["results"], cfg.confidence, cfg.bootstrap)
    results["variant_comparisons"] = compare_variants(results["results"], cfg.confidence, cfg.bootstrap)
    (out_dir / "results.json").write_text(results_json(results))
    paths_written = write_report(results, out_dir) if cfg.report else {"results": out_dir / "results.json"}
    print("[eval] wrote " + ", ".join(str(p) for p in paths_written.values()), flush=True)
    return results
