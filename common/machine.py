"""What a measurement ran on: platform, CPUs, library versions, GPU and the load at the start.

Bench reports (``vtlm.bench``) and eval results (``vtlm.eval``) both record it next to their
numbers.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform


def machine() -> dict:
    """What the numbers were measured on."""
    import numpy
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # other work on the machine at the start (1, 5, 15 min): above the core count, timings suffer
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    for package in ("decord", "av", "transformers", "x-transformers", "magvit2-pytorch"):
        try:  # the installed distribution's version (not every package sets __version__)
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    return info
