"""One cell of the classifier track: (dataset, model, defense, attack, ε, threat) → per-sample outcomes.

Data flow: first ``n`` test images → trained classifier (content-keyed cache) → defense parts → clean
pass through the defense → attack on the threat's surface → threat model enforced → adversarial pass
through the defense, with the harness's own forward passes. Per sample we store the label, the clean and
adversarial predictions, the L∞ and L2 norms and the defense's diagnostics (e.g. reconstruction MSE).
"""
from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F

from bench.cells import NONE, Cell
from bench.errors import BenchError, DataError
from bench.invariants import TOLERANCE, enforce, norms
from bench.metrics import attack_success_rate, proportion
from bench.models.training import TrainConfig, train_classifier
from bench.progress import progress
from bench.registry import ATTACKS, DEFENSES, MODELS
from bench.tracks.surfaces import attack_surface
from defenses.base import DefenseContext, DefenseParts, Identity

log = logging.getLogger(__name__)
SHEET = 16  # no-attack cells with a purifier store their first SHEET inputs and purified images (notes["samples"])
SHEET_ADV = 8  # oblivious attacked cells with a purifier store that many adversarial inputs and their purifications


def _classifier(cell: Cell, device: torch.device, *, transform: Any = None, transform_key: str | None = None,
                adv_eps: float = 0.0, train_images: int | None = None) -> torch.nn.Module:
    """The cell's classifier; defenses pass a training-image ``transform`` (Rec) or ``adv_eps`` (adv. training),
    and may train on the first ``train_images`` images instead of the cell's ``train.train_images``."""
    train = {**cell.train, **({"train_images": train_images} if train_images is not None else {})}
    return train_classifier(cell.model, cell.dataset, config=TrainConfig(**train, adv_eps=adv_eps),
                            seed=cell.spec_seed, device=device, factory=MODELS.get(cell.model),
                            transform=transform, transform_key=transform_key)


def build_defense(cell: Cell, device: torch.device) -> DefenseParts:
    from bench import data
    from bench.cache import cache_root

    ctx = DefenseContext(
        dataset=cell.dataset, model=cell.model, classifier=_classifier(cell, device), device=device,
        seed=cell.spec_seed, profile=dict(cell.settings), cache_dir=cache_root(),
        train_classifier=lambda **kw: _classifier(cell, device, **kw),
        load_split=lambda split: data.load(cell.dataset, split))
    parts = DEFENSES.get(cell.defense)(ctx, **cell.defense_params)
    parts.purifier.to(device).eval()
    parts.classifier.to(device).eval()
    return parts


def check_unit_range(x: torch.Tensor, *, who: str) -> None:
    """Inputs reaching a model must lie in [0, 1] (the model contract): an error with advice, never a clamp."""
    low, high = float(x.min()), float(x.max())
    if low < -TOLERANCE or high > 1 + TOLERANCE:
        raise DataError(f"{who}: values outside [0, 1] (min {low:.4g}, max {high:.4g}) would reach the model; "
                        "models take NCHW floats in [0, 1] with any normalisation inside the model")


def check_logits(logits: torch.Tensor, n: int, *, who: str) -> None:
    """A classifier must return logits of shape (N, num_classes)."""
    if logits.dim() != 2 or logits.shape[0] != n or logits.shape[1] < 2:
        raise BenchError(f"{who}: output shape {tuple(logits.shape)}, expected ({n}, num_classes) logits")


def _defended_pass(parts: DefenseParts, x: torch.Tensor, *,
                   who: str) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    with torch.no_grad():
        purified, diagnostics = parts.purifier.purify(x)
        check_unit_range(purified, who=f"{who}: purified images")
        logits = parts.classifier(purified)
        check_logits(logits, len(x), who=who)
        return logits.argmax(1), diagnostics, purified


def image_sheet(x: torch.Tensor) -> dict[str, Any]:
    """Images (N, C, H, W) in [0, 1] as a small JSON value: shape and base64 of the uint8-quantised pixels."""
    import base64

    pixels = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).contiguous().numpy()
    return {"shape": list(pixels.shape), "uint8_base64": base64.b64encode(pixels.tobytes()).decode("ascii")}


def _gradient_stats(surface: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Fraction of exactly-zero input-gradient entries and their mean |value| (gradient-masking evidence)."""
    x = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(surface(x), y, reduction="sum"), x)
    return {"grad_zero_fraction": float((grad == 0).float().mean()), "grad_abs_mean": float(grad.abs().mean())}


def run_cell(cell: Cell, device: torch.device) -> tuple[dict, dict, dict]:
    """Evaluate ``cell``; returns (metrics, per_sample, notes). Deterministic given ``cell.seed``."""
    from bench import data

    torch.manual_seed(cell.seed)
    test = data.load(cell.dataset, "test")
    if cell.n > len(test.y):
        from bench.errors import SpecError
        raise SpecError(f"n: {cell.n} exceeds the {len(test.y)} test images of {cell.dataset}")
    x_all, y_all = test.x[:cell.n], test.y[:cell.n]
    check_unit_range(x_all, who=f"dataset {cell.dataset!r} test images")
    who = f"model {cell.model!r} with defense {cell.defense!r}"
    parts = build_defense(cell, device)
    # Seed after the defense is built: building may train (and reseed) or load from a cache, and the
    # evaluation's randomness must not depend on which of the two happened in this process.
    torch.manual_seed(cell.seed)
    attack = None if cell.attack == NONE else ATTACKS.get(cell.attack)(
        **({"backend": cell.backend} if cell.backend else {}), **({"eps": cell.eps} if cell.eps is not None else {}),
        **cell.attack_params)
    surface = attack_surface(parts, cell.threat, eot=cell.eot)
    rows: dict[str, list] = {k: [] for k in ("y", "clean_pred", "adv_pred", "linf", "l2")}
    grad_stats: list[dict[str, float]] = []
    samples: dict[str, Any] = {}
    with progress(total=cell.n, desc=cell.label, unit="img") as bar:
        for start in range(0, cell.n, cell.batch_size):
            x = x_all[start:start + cell.batch_size].to(device)
            y = y_all[start:start + cell.batch_size].to(device)
            clean_pred, clean_diag, purified = _defended_pass(parts, x, who=who)
            if start == 0 and attack is None and not isinstance(parts.purifier, Identity):  # report's sample sheet
                samples = {"inputs": image_sheet(x[:SHEET]), "purified": image_sheet(purified[:SHEET])}
            x_adv, adv_pred, adv_diag = x, clean_pred, clean_diag
            if attack is not None:
                with torch.no_grad():
                    labels = y if cell.label_mode == "true" else surface(x).argmax(1)
                grad_stats.append(_gradient_stats(surface, x, labels))
                x_adv = enforce(x, attack(surface, x, labels), norm=attack.norm, eps=attack.eps, who=repr(attack))
                adv_pred, adv_diag, purified_adv = _defended_pass(parts, x_adv, who=who)
                if start == 0 and cell.threat == "oblivious" and not isinstance(parts.purifier, Identity):
                    samples = {"inputs": image_sheet(x_adv[:SHEET_ADV]), "purified": image_sheet(
                        purified_adv[:SHEET_ADV])}
            linf, l2 = norms(x, x_adv)
            for name, values in (("y", y), ("clean_pred", clean_pred), ("adv_pred", adv_pred), ("linf", linf),
                                 ("l2", l2)):
                rows[name].extend(values.cpu().tolist())
            for name, values in clean_diag.items():
                rows.setdefault(f"clean_{name}", []).extend(values.cpu().tolist())
            for name, values in adv_diag.items():
                rows.setdefault(f"adv_{name}", []).extend(values.cpu().tolist())
            bar.update(len(y))
    metrics = summarize(rows, attacked=attack is not None)
    for name in ("grad_zero_fraction", "grad_abs_mean"):
        if grad_stats:
            metrics[name] = sum(g[name] for g in grad_stats) / len(grad_stats)
    notes = {"attack": repr(attack) if attack else NONE, "norm": attack.norm if attack else "",
             "backend": attack.backend if attack else "", "attack_params": dict(attack.params) if attack else {},
             "defense": parts.notes, "classifier": getattr(parts.classifier, "bench_meta", {})}
    if samples:
        notes["samples"] = samples
    return metrics, rows, notes


def summarize(rows: dict[str, list], *, attacked: bool) -> dict[str, float]:
    """Cell metrics from per-sample rows (also used by the report to recompute from records)."""
    y, clean, adv = rows["y"], rows["clean_pred"], rows["adv_pred"]
    metrics = {"accuracy": proportion([a == t for a, t in zip(adv, y)])[0],
               "clean_accuracy": proportion([c == t for c, t in zip(clean, y)])[0]}
    if attacked:
        metrics.update(attack_success_rate=attack_success_rate(y, clean, adv)[0],
                       linf_max=max(rows["linf"], default=0.0), linf_mean=sum(rows["linf"]) / max(1, len(y)),
                       l2_mean=sum(rows["l2"]) / max(1, len(y)))
    return metrics
