"""`skinfo demo` / `python -m skinfo demo`: the table and the reliability-diagram PNG."""

import subprocess
import sys

import numpy as np
import pytest

from skinfo import cli
from skinfo.datasets import OOD_KINDS


@pytest.mark.slow
def test_demo_prints_a_row_per_estimator_and_writes_the_figure(tmp_path, capsys):
    cli.main(["demo", "--epochs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("model"))
    columns = header.split()
    assert columns[:6] == ["model", "acc", "NLL", "Brier", "ECE", "fit"]
    assert columns[-6:] == [*OOD_KINDS, "held-out"]
    assert "skipped" not in out
    for name, _, _ in cli.DEMO_MODELS:
        row = next(line for line in lines if line.startswith(name + "  "))
        cells = row[len(name) :].split()
        aurocs = np.array(cells[-6:], dtype=float)
        assert np.all((aurocs >= 0) & (aurocs <= 1))
        if name != "ApproxMassFlow":
            acc, nll, brier, ece = (float(c) for c in cells[:4])
            assert 0.1 < acc <= 1 and nll > 0 and 0 <= brier <= 2 and 0 <= ece <= 1
    png = tmp_path / "reliability.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_module_entry_point_shows_help():
    result = subprocess.run(
        [sys.executable, "-m", "skinfo", "demo", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "--epochs" in result.stdout


def test_every_demo_model_is_a_skinfo_estimator():
    import skinfo

    for _, class_name, params in cli.DEMO_MODELS:
        est = getattr(skinfo, class_name)(**params)
        epochs = est.get_params()["max_epochs"]
        assert epochs == "auto" or epochs > 0
