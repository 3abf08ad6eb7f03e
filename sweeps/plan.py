"""Launch scripts for a cluster: each point a normal job, run by the cluster's own engines.

``vtlm sweep plan`` writes, beside points.tsv and every point's fit.yaml:

- ``launch_slurm.sh``: submits the world's preparation as one job, then a SLURM job array
  (one task per point, after the world) whose task N trains point N with ``vtlm FAMILY fit
  --config`` under ``srun`` (Lightning reads SLURM's environment for DDP / FSDP over the
  allocation's GPUs and nodes) and evaluates it; then ``vtlm sweep collect`` after the array.
- ``launch_torchrun.sh``: the same points one after another on one machine, each fit under
  ``torchrun`` over its GPUs, then evaluated.

A task that is killed and run again resumes its fit from the last checkpoint; a finished point
is skipped by ``vtlm sweep point``. No queue of vtlm's own: SLURM or the shell runs the jobs.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from .config import Point

SLURM = """#!/bin/bash
# vtlm sweep {name}: {count} points as a SLURM job array. Submit with: bash {script}
# Edit the #SBATCH resources below (or pass sbatch options) for your cluster.
set -euo pipefail
cd {root}
SWEEP={sweep}
GPUS=${{GPUS:-1}}
prepare=$(sbatch --parsable --job-name=vtlm-world --wrap "vtlm sweep prepare $SWEEP")
array=$(sbatch --parsable --dependency=afterok:$prepare --array=0-{last} --job-name=vtlm-sweep \\
  --gpus-per-node=$GPUS --ntasks-per-node=$GPUS {script_dir}/slurm_point.sh)
sbatch --dependency=afterany:$array --job-name=vtlm-collect --wrap "vtlm sweep collect $SWEEP"
echo "submitted: world $prepare, points $array (array 0-{last}), then collect"
# array task -> point:
{listing}
"""

SLURM_POINT = """#!/bin/bash
# One point of the sweep: SLURM_ARRAY_TASK_ID picks the line of points.tsv.
#SBATCH --output={out}/points/slurm-%A_%a.out
set -euo pipefail
cd {root}
line=$(awk -F'\\t' -v i="$SLURM_ARRAY_TASK_ID" 'NR > 1 && $1 == i' {tsv})
family=$(cut -f2 <<< "$line"); config=$(cut -f4 <<< "$line")
srun vtlm "$family" fit --config "$config" --trainer.devices "$SLURM_NTASKS_PER_NODE" --trainer.num_nodes "$SLURM_NNODES"
vtlm sweep point {sweep} --index "$SLURM_ARRAY_TASK_ID"
# points: {names}
"""

TORCHRUN = """#!/bin/bash
# vtlm sweep {name}: {count} points, one after another, each fit over this machine's GPUs.
set -euo pipefail
cd {root}
SWEEP={sweep}
GPUS=${{GPUS:-1}}
vtlm sweep prepare $SWEEP
{lines}
vtlm sweep collect $SWEEP
"""


def write_scripts(sweep_file: Path, out: Path, points: list[Point], tsv: Path) -> dict[str, Path]:
    """launch_slurm.sh (+ slurm_point.sh) and launch_torchrun.sh under ``out``; every point named."""
    root = shlex.quote(str(Path.cwd()))
    sweep = shlex.quote(str(sweep_file))
    names = " ".join(p.name for p in points)
    lines = []
    for point in points:
        config = shlex.quote(str(tsv.parent / "points" / point.name / "fit.yaml"))
        lines.append(
            f"# {point.index}: {point.label}\n"
            f"torchrun --standalone --nproc_per_node=$GPUS $(command -v vtlm) {point.family} fit --config {config} "
            f"--trainer.devices $GPUS\nvtlm sweep point $SWEEP --index {point.index}"
        )
    files = {
        "launch_slurm.sh": SLURM.format(
            name=out.name, count=len(points), script=out / "launch_slurm.sh", root=root, sweep=sweep,
            last=len(points) - 1, script_dir=shlex.quote(str(out)),
            listing="\n".join(f"#   {p.index}: {p.name} ({p.label})" for p in points),
        ),
        "slurm_point.sh": SLURM_POINT.format(out=out, root=root, tsv=shlex.quote(str(tsv)), sweep=sweep, names=names),
        "launch_torchrun.sh": TORCHRUN.format(name=out.name, count=len(points), root=root, sweep=sweep, lines="\n".join(lines)),
    }  # fmt: skip
    written = {}
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        path.chmod(0o755)
        written[name] = path
    return written
