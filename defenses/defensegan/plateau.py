"""Stop generator training when Defense-GAN's oblivious FGSM accuracy stops improving (issue: "train until the
oblivious FGSM number stops improving, not for a fixed small budget").

``python -m defenses.defensegan.train --dataset mnist --until-plateau`` measures, at every generator snapshot,
the same row as the quality curve (:func:`quality.generator_row`: a harness-trained classifier on the first
``n`` test images, clean and oblivious FGSM, projected with L steps and R restarts) and appends it to the run
folder's ``quality.jsonl``. Training stops at the first snapshot where the rule says the curve has levelled
off. The measurement forks the RNG, so a watched run follows exactly the trajectory of an unwatched one.

Rule (:func:`plateaued`): with the FGSM-after-projection accuracies a_1 … a_k of the snapshots at or after
``warmup`` iterations, stop when k > ``patience`` and max(last ``patience``) < max(the earlier ones) +
``min_delta``. The warm-up exists because the first generators are so blurry that projecting removes the
FGSM perturbation together with the digit's detail: measured on MNIST (n 200, L 50, R 2), 250 iterations gave
0.44 under FGSM with clean accuracy 0.91, then 0.245, 0.225, 0.31, 0.395, 0.405 at 500 … 4 000 iterations;
without a warm-up that early value would stop the run at 4 000. The default
``min_delta`` = 0.02 is about half the binomial standard error of an accuracy near 0.5 on 200 images, and
snapshots come every 2 000 iterations, so the default stops after 6 000 iterations without a clear gain.
"""
from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)
HISTORY = "quality.jsonl"
METRIC = "acc_fgsm_projected"


@dataclass(frozen=True)
class PlateauRule:
    """Stop when the last ``patience`` measurements gain less than ``min_delta`` over the best before them."""

    patience: int = 3
    min_delta: float = 0.02
    warmup: int = 2000

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"expected patience >= 1, got {self.patience}")
        if not 0 <= self.min_delta <= 1:
            raise ValueError(f"expected min_delta in [0, 1], got {self.min_delta}")
        if self.warmup < 0:
            raise ValueError(f"expected warmup >= 0, got {self.warmup}")


def plateaued(values: list[float], rule: PlateauRule) -> bool:
    """Whether a metric measured at successive snapshots (oldest first) has stopped improving."""
    if len(values) <= rule.patience:
        return False
    before, recent = values[:-rule.patience], values[-rule.patience:]
    return max(recent) < max(before) + rule.min_delta


class QualityWatch:
    """Called by the training loop at each snapshot: measure the generator, log the row, say whether to stop.

    ``settings`` identify a measurement (images, classifier, projection); rows of ``quality.jsonl`` written
    with other settings are kept in the file but not used for the decision.
    """

    def __init__(self, out_dir: str | Path, classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                 settings: dict[str, Any], rule: PlateauRule = PlateauRule()) -> None:
        self.path = Path(out_dir) / HISTORY
        self.classifier, self.images, self.labels = classifier.eval(), images, labels
        self.settings, self.rule = settings, rule

    def rows(self) -> list[dict[str, Any]]:
        """This watch's rows of the history, by iteration (a re-measured iteration keeps its last row)."""
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        mine = {row["iteration"]: row for row in rows if row.get("settings") == self.settings}
        return [mine[it] for it in sorted(mine)]

    def seed(self, curve: dict[str, Any]) -> None:
        """Start an empty history with a parent generator's measured curve (``quality_curve`` of its
        provenance) when it was measured with these settings, so the rule sees the whole training history."""
        if self.path.exists() or curve.get("settings") != self.settings:
            return
        lines = [json.dumps({**row, "settings": self.settings}, sort_keys=True) for row in curve["rows"]]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(line + "\n" for line in lines))

    def done(self) -> bool:
        return plateaued([row[METRIC] for row in self.rows() if row["iteration"] >= self.rule.warmup], self.rule)

    def __call__(self, iteration: int, generator: nn.Module) -> bool:
        from defenses.defensegan import quality

        kw = {k: self.settings[k] for k in ("eps", "L", "R", "seed")}
        gen = copy.deepcopy(generator).eval().requires_grad_(False)  # the training copy keeps its flags
        with torch.no_grad():  # measure the weights as snapshots and artifacts store them: fp16
            for p in gen.parameters():
                p.copy_(p.half().float())
        row = {"iteration": iteration, **quality.generator_row(gen, self.classifier, self.images, self.labels, **kw)}
        with open(self.path, "a") as f:
            f.write(json.dumps({**row, "settings": self.settings}, sort_keys=True) + "\n")
        stop = self.done()
        log.info("iteration %d: Defense-GAN accuracy under oblivious FGSM %.3f (clean projected %.3f, rec MSE "
                 "%.4f)%s", iteration, row[METRIC], row["acc_clean_projected"], row["rec_mse_clean"],
                 " -- plateau reached, stopping" if stop else "")
        return stop


def watch_for(dataset: str, out_dir: Path, *, rule: PlateauRule, **setup_kw: Any) -> QualityWatch:
    """The watch with the quality curve's measurement (``python -m defenses.defensegan.curve`` defaults)."""
    from defenses.defensegan.curve import setup

    classifier, images, labels, settings = setup(dataset, **setup_kw)
    return QualityWatch(out_dir, classifier, images, labels, settings=settings, rule=rule)
