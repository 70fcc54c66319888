"""Run every benchmark (``make bench``), time each piece and publish the results to the docs.

Runs, each in its own process, in this order: the quality benchmark on digits
(:mod:`benchmarks.quality`), the speed benchmark, the per-method scripts
(``ova_defaults``, ``mass``, ``vib``, ``ibinn``, ``approx_mass``), the
``compile=True`` comparison (``compile``), the OOD scores and the confidence
landscapes. Each writes ``benchmarks/results/<name>.md`` / ``.json`` (and
PNGs); this script adds ``results/bench_times.md`` (wall time of each piece,
the date and the machine) and, unless ``--quick`` or ``--no-publish`` is
given, copies every result file into ``docs/results/``, which the
documentation includes.

``--images`` (``make bench-images``) runs the MNIST-5k pieces instead: the
quality benchmark with its three seeds and the targets table read from it
(:mod:`benchmarks.image_targets`), timed in ``results/bench_times_images.md``.
They take about an hour on two CPU cores (one seed alone is 18 minutes), so
they are a command of their own. A run with another number of seeds
(``--seeds 1``) is written as ``quality_mnist_1seed`` and never copied into
the docs, which show the three-seed run.

Run: ``python -m benchmarks.run_all [--quick] [--images] [--only quality speed ...]
[--no-publish]``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ._common import RESULTS, markdown_table, write_results

ROOT = Path(__file__).resolve().parents[1]
DOCS_RESULTS = ROOT / "docs" / "results"

#: (label, module, arguments, accepts --quick), in the order they run.
PIECES: list[tuple[str, str, list[str], bool]] = [
    ("quality (digits)", "quality", [], True),
    ("speed", "speed", [], True),
    ("OVA defaults", "ova_defaults", [], True),
    ("MASS", "mass", [], True),
    ("VIB", "vib", [], True),
    ("IB-INN", "ibinn", [], True),
    ("approximate mass", "approx_mass", [], True),
    ("compile=True", "compile", [], True),
    ("OOD scores", "ood_scores", [], True),
    ("confidence landscapes", "landscapes", ["--readme"], False),
]


#: ``--images`` (``make bench-images``): the MNIST-5k benchmark with its 3 seeds, then the
#: targets table read from it. About an hour on two CPU cores, so not part of ``make bench``.
IMAGE_PIECES: list[tuple[str, str, list[str], bool]] = [
    ("quality (MNIST-5k, 3 seeds)", "quality", ["--data", "mnist", "--seeds", "3"], True),
    ("image targets", "image_targets", [], True),
]


def run_piece(module: str, args: list[str]) -> tuple[int, float]:
    """Run ``python -m benchmarks.<module> *args``; return its exit code and wall time."""
    start = time.perf_counter()
    rc = subprocess.call([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=ROOT)
    return rc, time.perf_counter() - start


def publish(target: Path = DOCS_RESULTS, since: float = 0.0) -> list[Path]:
    """Copy the markdown tables and figures written since ``since`` (a time stamp) to ``target``.

    Results of ``--quick`` runs are never copied.
    """
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(RESULTS.glob("*")):
        fresh = path.stat().st_mtime >= since
        # the docs show the 3-seed MNIST run, not a shorter one (quality_mnist_1seed)
        short = "_quick" in path.stem or re.search(r"_\d+seed", path.stem)
        if fresh and path.suffix in {".md", ".png"} and not short:
            shutil.copy(path, target / path.name)
            copied.append(target / path.name)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every piece")
    parser.add_argument("--only", nargs="+", metavar="MODULE", help="run only these modules")
    parser.add_argument("--no-publish", action="store_true", help="do not copy into docs/")
    parser.add_argument(
        "--images", action="store_true", help="run the 3-seed MNIST-5k pieces instead"
    )
    args = parser.parse_args(argv)
    rows, failed = [], []
    started = time.time()
    total = time.perf_counter()
    for label, module, extra, quick_ok in IMAGE_PIECES if args.images else PIECES:
        if args.only and module not in args.only:
            continue
        if not (ROOT / "benchmarks" / f"{module}.py").is_file():
            print(f"note: benchmarks/{module}.py not found, skipped")
            rows.append([label, f"python -m benchmarks.{module}", "n/a", "missing"])
            continue
        cmd = extra + (["--quick"] if args.quick and quick_ok else [])
        print(f"== {label}: python -m benchmarks.{module} {' '.join(cmd)}", flush=True)
        rc, seconds = run_piece(module, cmd)
        status = "ok" if rc == 0 else f"failed (exit {rc})"
        if rc != 0:
            failed.append(label)
        command = " ".join(["python -m benchmarks." + module, *cmd])
        rows.append([label, f"`{command}`", f"{seconds:.0f}", status])
        print(f"== {label}: {status} in {seconds:.0f} s", flush=True)
    elapsed = time.perf_counter() - total
    rows.append(["total", "", f"{elapsed:.0f}", "ok" if not failed else "failed"])
    text = markdown_table(["piece", "command", "wall time (s)", "status"], rows)
    name = "bench_times" + ("_images" if args.images else "") + ("_quick" if args.quick else "")
    write_results(name, text + "\n", {"rows": rows})
    print(text)
    if not (args.quick or args.no_publish or args.only):
        for path in publish(since=started):
            print(f"published: {path.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
