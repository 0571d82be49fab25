"""The registered ``magnet`` defense: MagNet (Meng & Chen, CCS 2017) as the Defense-GAN tables' baseline.

MagNet on MNIST (authors' ``test_defense.py``) is a *reformer* (autoencoder I, see :mod:`defenses.magnet_nets`)
in front of the classifier plus two *detectors* that reject inputs far from the data manifold:

* ``magnet_l2``: mean over pixels of (x − AE_I(x))², the reformer's own reconstruction error;
* ``magnet_l1``: mean over pixels of |x − AE_II(x)|;
* optionally ``magnet_jsd_T<T>``: Jensen–Shannon divergence between softmax(f(x)/T) and softmax(f(AE_I(x))/T)
  (MagNet's probability-divergence detector, used there on CIFAR-10 with T = 10 and 40; off by default).

Each threshold is set as MagNet's ``Operator.get_thrs``: the ⌊fpr·N⌋-th largest score on the N validation
images (fpr = "drop rate" 0.001), and an input is flagged when its score is ≥ the threshold.

**Column decision.** The Defense-GAN tables' MagNet column is scored as the classifier's accuracy on
reformed inputs, ``classifier(AE_I(x))``: a detected sample is *not* counted as correct (nor removed). The
detectors are reported per sample from :meth:`MagNetPurifier.purify` (``magnet_l2``, ``magnet_l1``,
``magnet_flag`` ∈ {0, 1}) and their thresholds in the notes, so "accuracy or detected" can be recomputed
from the stored records. The purifier is differentiable (sigmoid convolutions), so the ``unrolled`` threat
is plain backpropagation through AE_I; ``bpda`` treats it as the identity.

Profile keys read from ``ctx.profile``: ``magnet_epochs`` (default :data:`DEFAULT_EPOCHS`; MagNet: 100),
``magnet_lr`` (Adam learning rate, default :data:`DEFAULT_LR`; MagNet: 1e-3) and ``magnet_train_images``
(default: the whole train split; MagNet: 55 000 images of the official training set).
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from defenses.base import DefenseContext, DefenseParts, Diagnostics, Purifier
from defenses.magnet_nets import AETrainConfig, load_or_train

log = logging.getLogger(__name__)

# CPU defaults: 3 epochs on the 50 000 training images take ~1.5 min for both autoencoders on one busy core.
# MagNet's own recipe (100 epochs, Adam lr 1e-3) sits on a plateau (val MSE ≈ 0.09, a blurred mean image) for
# its first ~4 epochs, so the short CPU recipe raises the learning rate to 1e-2 (val MSE 0.0035 after 3 epochs).
DEFAULT_EPOCHS = 3
DEFAULT_LR = 1e-2


def _jsd(logits_p: torch.Tensor, logits_q: torch.Tensor, temperature: float) -> torch.Tensor:
    """Jensen–Shannon divergence (nats) between softmax(logits/T) rows: (N, K), (N, K) → (N,)."""
    log_p, log_q = F.log_softmax(logits_p / temperature, 1), F.log_softmax(logits_q / temperature, 1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), 0) - torch.log(torch.tensor(2.0))
    return 0.5 * ((log_p.exp() * (log_p - log_m)).sum(1) + (log_q.exp() * (log_q - log_m)).sum(1))


class MagNetPurifier(Purifier):
    """Reformer ``AE_I``: (N, 1, H, W) in [0, 1] → same shape in (0, 1); detector scores as diagnostics.

    ``thresholds`` (score name → float) come from :meth:`calibrate`; until then no sample is flagged.
    ``classifier`` is needed only for the divergence detectors (``temperatures``).
    """

    def __init__(self, reformer: nn.Module, detector_l1: nn.Module, *, classifier: nn.Module | None = None,
                 temperatures: Sequence[float] = ()) -> None:
        super().__init__()
        if temperatures and classifier is None:
            raise ValueError("the divergence detectors (temperatures) need a classifier")
        self.reformer, self.detector_l1 = reformer, detector_l1
        self.classifier = classifier if temperatures else None
        self.temperatures = tuple(float(t) for t in temperatures)
        self.thresholds: dict[str, float] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reformer(x)

    def scores(self, x: torch.Tensor, reformed: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Detector scores, each (N,); larger = further from the training data."""
        reformed = self.reformer(x) if reformed is None else reformed
        out = {"magnet_l2": (x - reformed).square().mean((1, 2, 3)),
               "magnet_l1": (x - self.detector_l1(x)).abs().mean((1, 2, 3))}
        if self.classifier is not None:
            logits_x, logits_r = self.classifier(x), self.classifier(reformed)
            for t in self.temperatures:
                out[f"magnet_jsd_T{t:g}"] = _jsd(logits_x, logits_r, t)
        return out

    def purify(self, x: torch.Tensor) -> tuple[torch.Tensor, Diagnostics]:
        with torch.no_grad():
            reformed = self.reformer(x)
            diagnostics = self.scores(x, reformed)
        flag = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for name, threshold in self.thresholds.items():
            flag |= diagnostics[name] >= threshold
        diagnostics["magnet_flag"] = flag.long()
        return reformed, diagnostics

    @torch.no_grad()
    def calibrate(self, x_val: torch.Tensor, *, fpr: float, batch: int = 1000) -> dict[str, float]:
        """Set each threshold to the ⌊fpr·N⌋-th largest score on ``x_val`` (N, 1, H, W); returns the thresholds."""
        device = next(self.reformer.parameters()).device
        chunks = [self.scores(x_val[i:i + batch].to(device)) for i in range(0, len(x_val), batch)]
        drop = int(len(x_val) * fpr)
        if drop < 1:
            raise BenchError(f"magnet: fpr {fpr} drops no image of the {len(x_val)} validation images; "
                             f"valid: fpr >= {1 / len(x_val):.2g}")
        self.thresholds = {name: float(torch.cat([c[name] for c in chunks]).sort().values[-drop].cpu())
                           for name in chunks[0]}
        return dict(self.thresholds)

    def extra_repr(self) -> str:
        return f"temperatures={self.temperatures}, thresholds={self.thresholds}"


def _profile_int(profile: dict[str, Any], key: str, default: int | None) -> int | None:
    value = profile.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise BenchError(f"invalid profile {key}: {value!r}; expected an integer >= 1"
                         + (" or unset" if default is None else ""))
    return value


def build(ctx: DefenseContext, *, fpr: float = 0.001, temperatures: Sequence[float] = (),
          noise: float = 0.1) -> DefenseParts:
    """MagNet for one cell: train (or load) AE_I and AE_II, calibrate the detectors on the val split.

    ``fpr``: the detectors' false-positive rate on the validation images (MagNet's drop rate);
    ``temperatures``: add a divergence detector per T (MagNet's CIFAR setting is [10, 40]);
    ``noise``: std of the Gaussian noise the autoencoders are trained to remove.
    """
    if not 0 < fpr < 1:
        raise BenchError(f"invalid magnet fpr: {fpr!r}; expected a number in (0, 1)")
    if any(not isinstance(t, (int, float)) or t <= 0 for t in temperatures):
        raise BenchError(f"invalid magnet temperatures: {list(temperatures)!r}; expected numbers > 0")
    if not 0 <= noise <= 1:
        raise BenchError(f"invalid magnet noise: {noise!r}; expected a number in [0, 1]")
    epochs = _profile_int(ctx.profile, "magnet_epochs", DEFAULT_EPOCHS)
    n_train = _profile_int(ctx.profile, "magnet_train_images", None)
    lr = ctx.profile.get("magnet_lr", DEFAULT_LR)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise BenchError(f"invalid profile magnet_lr: {lr!r}; expected a number > 0")
    train, val = ctx.load_split("train"), ctx.load_split("val")
    aes, meta = {}, {}
    for offset, arch in enumerate(("I", "II")):  # distinct seeds: AE_II's noise draw differs from AE_I's
        config = AETrainConfig(arch=arch, epochs=epochs, train_images=n_train, lr=float(lr), noise=noise)
        aes[arch], meta[arch] = load_or_train(config, train=train, val=val, dataset=ctx.dataset,
                                              seed=ctx.seed + offset, cache_dir=ctx.cache_dir, device=ctx.device)
    purifier = MagNetPurifier(aes["I"], aes["II"], classifier=ctx.classifier if temperatures else None,
                              temperatures=temperatures)
    thresholds = purifier.calibrate(val.x, fpr=fpr)
    notes = {"method": "MagNet (Meng & Chen, CCS 2017), MNIST setting: reformer AE_I, detectors L2(AE_I), L1(AE_II)",
             "column": "accuracy = classifier(reformer(x)); detected samples are not counted as correct; "
                       "detection is per-sample magnet_flag",
             "fpr": fpr, "val_images": len(val.x), "thresholds": thresholds, "temperatures": list(purifier.temperatures),
             "autoencoders": {arch: {k: m.get(k) for k in ("source", "sha256", "key", "config", "images", "val_mse",
                                                          "final_train_mse", "train_seconds", "seed")}
                              for arch, m in meta.items()}}
    log.info("MagNet thresholds at fpr %g on %d validation images: %s", fpr, len(val.x), thresholds)
    return DefenseParts(purifier=purifier, classifier=ctx.classifier, notes=notes)
