"""The MNIST / Fashion-MNIST classifiers A–F of the Defense-GAN code (``utils/network_builder.py``).

Input: (N, 1, 28, 28) float in [0, 1]. Output: logits (N, 10) (the softmax of the original lives in the loss).

Layer tables follow ``reference/defensegan.md`` §2.4; TF "SAME" padding with stride 2 is reproduced with the
explicit padding TensorFlow would add (8×8 kernel on 28×28 → 3 pixels each side).

Dropout semantics (a documented ambiguity). The released code calls TF1 ``tf.nn.dropout(x, p)`` where ``p`` is
the *keep* probability, so its "Dropout(0.25)" keeps 25 % of the units; the paper's appendix and Tramèr's
Keras originals of models A–D use *drop rates*. We default to ``"drop_rate"`` (PyTorch ``nn.Dropout(p)``
drops a fraction p), because the authors state the released code is not the code behind the paper's tables
(kabkabm/defensegan#2) and drop rates are what the table says literally. ``dropout="keep_prob"`` reproduces
the released code (it explains model B's low clean accuracy of 0.962: only 20 % of input pixels survive).

Initialisation as the released code: weights ~ N(0, 1), then scaled to unit L2 norm per output unit over
the fan-in; biases 0.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

DropoutSemantics = Literal["drop_rate", "keep_prob"]
ARCHITECTURES = ("A", "B", "C", "D", "E", "F")


def _dropout(p: float, semantics: DropoutSemantics) -> nn.Dropout:
    return nn.Dropout(p if semantics == "drop_rate" else 1.0 - p)


def _layers(arch: str, drop: DropoutSemantics) -> list[nn.Module]:
    relu = nn.ReLU
    if arch == "A":
        return [nn.Conv2d(1, 64, 5, padding=2), relu(), nn.Conv2d(64, 64, 5, stride=2), relu(), nn.Flatten(),
                _dropout(0.25, drop), nn.Linear(64 * 12 * 12, 128), relu(), _dropout(0.5, drop), nn.Linear(128, 10)]
    if arch in ("B", "F"):
        body = [nn.Conv2d(1, 64, 8, stride=2, padding=3), relu(), nn.Conv2d(64, 128, 6, stride=2), relu(),
                nn.Conv2d(128, 128, 5), relu()]
        if arch == "F":
            return [*body, nn.Flatten(), nn.Linear(128, 10)]
        return [_dropout(0.2, drop), *body, _dropout(0.5, drop), nn.Flatten(), nn.Linear(128, 10)]
    if arch == "C":
        return [nn.Conv2d(1, 128, 3, padding=1), relu(), nn.Conv2d(128, 64, 5, stride=2), relu(), nn.Flatten(),
                _dropout(0.25, drop), nn.Linear(64 * 12 * 12, 128), relu(), _dropout(0.5, drop), nn.Linear(128, 10)]
    if arch == "D":
        return [nn.Flatten(), nn.Linear(784, 200), relu(), _dropout(0.5, drop), nn.Linear(200, 200), relu(),
                nn.Linear(200, 10)]
    if arch == "E":
        return [nn.Flatten(), nn.Linear(784, 200), relu(), nn.Linear(200, 200), relu(), nn.Linear(200, 10)]
    raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")


def _unit_norm_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        with torch.no_grad():
            weight = torch.randn_like(module.weight)
            norms = weight.flatten(1).norm(dim=1).clamp_min(1e-12)
            module.weight.copy_(weight / norms.view(-1, *([1] * (weight.dim() - 1))))
            module.bias.zero_()


class Classifier(nn.Sequential):
    """One of the architectures A–F; ``repr`` names the architecture and dropout semantics."""

    def __init__(self, arch: str, *, dropout: DropoutSemantics = "drop_rate") -> None:
        super().__init__(*_layers(arch, dropout))
        self.arch, self.dropout = arch, dropout
        self.apply(_unit_norm_init)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, dropout={self.dropout!r}"


def build(arch: str, *, dropout: DropoutSemantics = "drop_rate") -> Classifier:
    """Factory used by the model registry: ``build("A")``."""
    return Classifier(arch, dropout=dropout)


def _factory(arch: str):
    def make(*, dropout: DropoutSemantics = "drop_rate") -> Classifier:
        return Classifier(arch, dropout=dropout)
    make.__name__ = make.__qualname__ = f"build_{arch}"
    make.__doc__ = f"Classifier {arch} of the Defense-GAN code (see module docstring)."
    return make


A, B, C, D, E, F = (_factory(a) for a in ARCHITECTURES)
