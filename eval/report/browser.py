"""Headless Chromium for looking at a report: the DOM after scripts and media ran, or a screenshot.

Each call starts a fresh browser with an empty profile in a temporary folder and the flags that
work as root on a closed network (no sandbox, no GPU, no background networking).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DEFAULT_PATH = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)


def chromium_path() -> str | None:
    """The Chromium executable: /usr/bin/chromium, else the first of chromium, chromium-browser,
    google-chrome on PATH; None when there is none."""
    if os.access(DEFAULT_PATH, os.X_OK):
        return DEFAULT_PATH
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(html_path: str | os.PathLike, extra: list[str], timeout: float) -> str:
    executable = chromium_path()
    if executable is None:
        raise RuntimeError(f"headless Chromium not found at {DEFAULT_PATH}: apt-get install chromium")
    url = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="vtlm-chromium-") as profile:
        command = [executable, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"headless Chromium did not finish within {timeout} s on {url}") from error
    if done.returncode != 0:
        raise RuntimeError(
            f"headless Chromium failed (exit {done.returncode}) on {url}:\n{done.stderr[-2000:]}"
        )
    return done.stdout


def dump_dom(html_path: str | os.PathLike, budget_ms: int = 5000, timeout: float = 60.0) -> str:
    """The page's DOM as HTML after ``budget_ms`` of virtual time (scripts ran, media loaded)."""
    if budget_ms <= 0:
        raise ValueError(f"budget_ms: expected a positive number of milliseconds, got {budget_ms}")
    return _run(html_path, ["--dump-dom", f"--virtual-time-budget={budget_ms}"], timeout)


def screenshot(
    html_path: str | os.PathLike,
    png_path: str | os.PathLike,
    width: int = 1280,
    height: int = 2400,
    budget_ms: int = 3000,
    timeout: float = 60.0,
) -> Path:
    """A PNG of the top ``width`` x ``height`` pixels of the page; returns ``png_path``."""
    if width <= 0 or height <= 0:
        raise ValueError(f"width, height: expected positive pixel sizes, got {width} x {height}")
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.unlink(missing_ok=True)
    extra = [
        f"--screenshot={png_path}",
        f"--window-size={width},{height}",
        f"--virtual-time-budget={budget_ms}",
    ]
    _run(html_path, extra, timeout)
    if not png_path.is_file():
        raise RuntimeError(f"headless Chromium wrote no screenshot to {png_path}")
    return png_path
