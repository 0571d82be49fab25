"""A test-only track whose cells misbehave on purpose, loaded as a plugin (also inside Ray workers).

``cell.settings["mode"]``: ``ok``; ``raise`` (an ordinary exception); ``die_once`` (the worker process is
SIGKILLed the first time, the retry succeeds); ``die_always`` (killed on every attempt).
"""
import os
import signal
from pathlib import Path

from bench.tracks import TRACKS

TRACKS["fault"] = f"{__name__}:run_cell"


def run_cell(cell, device):
    mode, marker = cell.settings["mode"], Path(cell.settings["marker"])
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "die_always" or (mode == "die_once" and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return {"accuracy": 1.0}, {"y": [0], "clean_pred": [0], "adv_pred": [0]}, {"mode": mode}


def fault_cell(mode: str, folder: Path):
    from bench.cells import Cell

    return Cell(experiment="faults", profile="quick", track="fault", dataset="none", model=mode, defense="none",
                defense_label="none", attack="none", backend=None, eps=None, threat="none", targeted=False, n=1,
                seed=0, spec_seed=0, label_mode="true", batch_size=1, eot=1,
                settings={"mode": mode, "marker": str(folder / f"{mode}.marker")})
