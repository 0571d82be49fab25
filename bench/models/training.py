"""Classifier training, cached on disk by a content key.

The key covers everything that determines the weights: architecture, dataset checksum, training config,
seed and (for Defense-GAN-Rec) the key of the transform applied to the training images. A checkpoint is a
``state_dict`` saved with ``torch.save`` and loaded with ``weights_only=True``; a JSON sidecar holds its
SHA-256 and the training statistics, so a corrupt or truncated checkpoint is detected and retrained.
"""
from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.cache import atomic_write_bytes, atomic_write_text, cache_root, content_key, sha256_file
from bench.progress import progress

log = logging.getLogger(__name__)
_MEMO: dict[str, nn.Module] = {}


@dataclass(frozen=True)
class TrainConfig:
    """How a classifier is trained (Adam, as the Defense-GAN code via cleverhans ``model_train``).

    ``train_images`` limits training to the first N images of the train split (None: all 50 000).
    ``adv_eps`` > 0 turns on FGSM adversarial training: loss = (CE(clean) + CE(FGSM_eps(clean))) / 2.
    """

    epochs: int = 10
    batch_size: int = 50
    lr: float = 1e-3
    train_images: int | None = None
    dropout: str = "drop_rate"
    adv_eps: float = 0.0


def _fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, *, seed: int,
         device: torch.device, label: str) -> dict[str, float]:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = (len(x) + config.batch_size - 1) // config.batch_size
    loss_value = float("nan")
    with progress(total=config.epochs * steps, desc=f"train {label}", unit="batch") as bar:
        for _ in range(config.epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), config.batch_size):
                idx = order[start:start + config.batch_size]
                xb, yb = x[idx].to(device), y[idx].to(device)
                loss = F.cross_entropy(model(xb), yb)
                if config.adv_eps > 0:
                    loss = (loss + F.cross_entropy(model(_fgsm(model, xb, yb, config.adv_eps)), yb)) / 2
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_value = float(loss.detach())
                bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}")
    model.eval()
    return {"final_loss": loss_value}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, device: torch.device, batch: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch].to(device)).argmax(1).cpu() == y[i:i + batch]).sum())
                  for i in range(0, len(x), batch))
    return correct / max(1, len(x))


def _read_sidecar(path: Path) -> dict | None:
    """The JSON sidecar of a checkpoint, or None when it is unreadable (then the checkpoint is retrained)."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        log.warning("checkpoint sidecar %s is unreadable (%s); retraining", path, err)
        return None
    return meta if isinstance(meta, dict) else None


def _load_checked(model: nn.Module, path: Path, *, arch: str, meta: dict) -> None:
    """Load a verified checkpoint; one made for another architecture is an error, never a partial load."""
    from bench.errors import BenchError

    advice = "delete it (and its .json) to retrain"
    if meta.get("arch") != arch:
        raise BenchError(f"checkpoint {path}: made for architecture {meta.get('arch')!r}, expected {arch!r}; {advice}")
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except RuntimeError as err:  # missing/unexpected keys or size mismatch
        first = str(err).strip().splitlines()[0]
        raise BenchError(f"checkpoint {path}: does not fit architecture {arch!r} ({first}); {advice}") from None


def train_classifier(arch: str, dataset: str, *, config: TrainConfig, seed: int, device: torch.device,
                     factory: Callable[..., nn.Module], transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     transform_key: str | None = None, progress_bar: bool = True) -> nn.Module:
    """Train (or load from the cache) classifier ``arch`` on ``dataset``'s train split; returns it in eval mode.

    ``transform`` maps the (N, 1, 28, 28) training images to the images actually trained on (for example
    Defense-GAN reconstructions); it must come with a ``transform_key`` identifying it for the cache.
    """
    from bench import data
    from bench.models.pretrained import Pretrained

    if (transform is None) != (transform_key is None):
        raise ValueError("transform and transform_key go together")
    if isinstance(factory, Pretrained):
        if transform is not None or config.adv_eps:
            from bench.errors import BenchError
            raise BenchError(f"model {arch!r} is pretrained (a registered checkpoint): a defense that retrains the "
                             "classifier (adversarial training, Defense-GAN-Rec) needs a trainable model")
        return factory.load(device, who=repr(arch))
    train = data.load(dataset, "train")
    key = content_key({"arch": arch, "dataset": dataset, "data_sha256": train.sha256, "config": asdict(config),
                       "seed": seed, "transform": transform_key, "format": 1})
    if key in _MEMO:
        return _MEMO[key]
    path = cache_root() / "models" / dataset / f"{arch}-{key[:16]}.pt"
    torch.manual_seed(seed)  # the initial weights depend on the seed only, not on whatever ran before
    model = factory(dropout=config.dropout)
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = _read_sidecar(meta_path)
        if meta is not None and sha256_file(path) == meta.get("sha256"):
            _load_checked(model, path, arch=arch, meta=meta)
            log.info("loaded cached classifier %s (%s)", arch, path)
            model.bench_meta, model.bench_checkpoint = meta, path
            _MEMO[key] = model.to(device).eval()
            return _MEMO[key]
        log.warning("checkpoint %s does not match its recorded SHA-256; retraining", path)
    x, y = train.x, train.y
    if config.train_images is not None:
        x, y = x[:config.train_images], y[:config.train_images]
    if transform is not None:
        x = transform(x)
    started = time.perf_counter()
    stats = _fit(model, x, y, config, seed=seed, device=device, label=f"{arch}/{dataset}")
    val = data.load(dataset, "val")
    stats.update(val_accuracy=accuracy(model, val.x, val.y, device=device), train_seconds=time.perf_counter() - started)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    meta = {"sha256": sha256_file(path), "arch": arch, "dataset": dataset, "config": asdict(config), "seed": seed,
            "transform": transform_key, "data_sha256": train.sha256, **stats}
    atomic_write_text(meta_path, json.dumps(meta, indent=2))
    model.bench_meta, model.bench_checkpoint = meta, path
    log.info("trained classifier %s on %s: val accuracy %.4f in %.0f s", arch, dataset, stats["val_accuracy"],
             stats["train_seconds"])
    _MEMO[key] = model.eval()
    return model

