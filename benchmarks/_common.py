"""Helpers shared by the benchmark scripts: timing, tables, output files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch
from sklearn.ensemble import IsolationForest
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM

RESULTS = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """A one-line description of the machine and library versions."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{_cpu_model()} ({os.cpu_count()} cores, {gpu}), {torch.get_num_threads()} torch "
        f"threads, python {platform.python_version()}, torch {torch.__version__}"
    )


#: Clocks of :func:`interleaved_medians`: wall time, or this thread's CPU time.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}


def interleaved_medians(
    funcs: dict[str, Callable[[], object]], repeats: int, clock: str = "wall"
) -> dict[str, float]:
    """Median time of each function, runs interleaved so drifts hit all equally.

    ``clock='cpu'`` times with this thread's CPU clock (``time.thread_time``):
    with one torch thread every kernel runs on the calling thread, so it
    measures the compute without the time other processes hold the core,
    which gives steadier ratios on a shared machine.
    """
    now = CLOCKS[clock]
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, fn in funcs.items():
            start = now()
            fn()
            times[name].append(now() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def sklearn_detectors(
    seed: int, gmm_components: int, suffix: str = ""
) -> dict[str, Callable[[], object]]:
    """The scikit-learn outlier baselines of every OOD table, as factories.

    IsolationForest, LocalOutlierFactor(novelty=True), OneClassSVM and a
    diagonal GaussianMixture (its log-density is the score); ``suffix`` is
    appended to each name.
    """
    return {
        f"IsolationForest{suffix}": lambda: IsolationForest(random_state=seed),
        f"LOF novelty{suffix}": lambda: LocalOutlierFactor(novelty=True),
        f"OneClassSVM{suffix}": lambda: OneClassSVM(gamma="scale", nu=0.1),
        f"GaussianMixture log-density{suffix}": lambda: GaussianMixture(
            gmm_components, covariance_type="diag", reg_covar=1e-3, random_state=seed
        ),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a GitHub markdown table (floats with 3 decimals)."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, markdown: str, data: dict) -> Path:
    """Write ``results/<name>.md`` and ``results/<name>.json``; return the markdown path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = f"*Measured {stamp} on {machine()}.*\n\n"
    (RESULTS / f"{name}.md").write_text(header + markdown + "\n")
    payload = {"date": stamp, "machine": machine(), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float))
    return RESULTS / f"{name}.md"
