"""The attack contract and the helpers every attack factory shares.

A registered attack factory validates its spec parameters and returns an :class:`Attack`:

    attack = build(backend="foolbox", eps=0.3)          # raises SpecError on a bad parameter
    x_adv = attack(model, x, y)                          # untargeted: move away from y
    x_adv = attack(model, x, y, target=t)                # targeted: move towards t

An ``Attack`` is a value (key, backend, norm, ε budget, resolved parameters) plus one stateless backend
adapter ``run(model, x, y, target, params) -> x_adv``. ``Attack.__call__`` owns the invariants that no
backend library keeps on its own: it leaves every module's train/eval flag and every parameter's
``requires_grad`` as it found them (torchattacks switches the model to eval mode; eagerpy's backward pass
would otherwise accumulate ``.grad`` in the model's parameters), runs with autograd enabled, and returns a
detached tensor of the input's shape, dtype and device.

Importing this module, or any factory module, does not import torch: ``bench validate`` can build every
attack in a spec to check its parameters without paying for torch. Adapters import torch and the backend
library when they run.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Mapping

from bench.errors import SpecError

if TYPE_CHECKING:
    import torch
    from torch import nn

Norm = Literal["linf", "l2"]
# run(model, x, y, target, params) -> x_adv; x (N, C, H, W) float in [0, 1], y and target int64 (N,).
Adapter = Callable[["nn.Module", "torch.Tensor", "torch.Tensor", "torch.Tensor | None", Mapping[str, Any]],
                   "torch.Tensor"]


@dataclass(frozen=True, eq=False, repr=False)
class Attack:
    """One configured attack.

    Attributes:
        key: registry key, e.g. ``"fgsm"``.
        backend: the library that computes it, e.g. ``"torchattacks"``.
        norm: the threat model's norm, ``"linf"`` or ``"l2"``.
        eps: the budget the harness enforces after the attack; ``None`` for minimal-norm attacks (CW).
        params: every resolved parameter, defaults included (it goes into the stored record).
        run: the backend adapter.
    """

    key: str
    backend: str
    norm: Norm
    eps: float | None
    params: dict[str, Any]
    run: Adapter

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.key}(backend={self.backend!r}{', ' if args else ''}{args})"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 target: torch.Tensor | None = None) -> torch.Tensor:
        """Attack ``model`` at ``x``.

        Args:
            model: maps (N, C, H, W) float in [0, 1] to logits (N, K).
            x: (N, C, H, W) float images in [0, 1].
            y: (N,) int64 labels to move away from (ignored by the backends when ``target`` is given).
            target: (N,) int64 labels to move towards, for a targeted attack; ``None`` for untargeted.

        Returns:
            x_adv: detached, same shape, dtype and device as ``x``, in [0, 1]; within ``eps`` of ``x`` in
            ``norm`` when ``eps`` is not None. Randomness comes only from torch's global RNG.
        """
        import torch

        _check_inputs(x, y, target)
        with _model_untouched(model), torch.enable_grad():
            x_adv = self.run(model, x.detach(), y, target, self.params)
        if x_adv.shape != x.shape:
            raise RuntimeError(f"{self!r}: backend returned shape {tuple(x_adv.shape)}, expected {tuple(x.shape)}")
        return x_adv.detach().to(device=x.device, dtype=x.dtype)


def _check_inputs(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> None:
    """Programming errors in the caller, reported before a backend fails obscurely (foolbox: bare assert)."""
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"expected x of shape (N, C, H, W) and float dtype, got {tuple(x.shape)} {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"expected x in [0, 1], got min={x.min().item():.4g}, max={x.max().item():.4g}")
    for name, labels in (("y", y), ("target", target)):
        if labels is not None and tuple(labels.shape) != (x.shape[0],):
            raise ValueError(f"expected {name} of shape ({x.shape[0]},), got {tuple(labels.shape)}")


@contextlib.contextmanager
def _model_untouched(model: nn.Module) -> Iterator[None]:
    """Freeze the parameters for the attack; restore every module's mode and every ``requires_grad`` after."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad in flags:
            p.requires_grad_(requires_grad)


# ---- parameter resolution for factories --------------------------------------------------------------


def pick_backend(key: str, backend: str, table: Mapping[str, Adapter]) -> Adapter:
    """The adapter of ``backend``, or a SpecError listing the valid backends."""
    if backend not in table:
        raise SpecError(f"{key}: unknown backend {backend!r}; valid: {', '.join(sorted(table))}")
    return table[backend]


def resolve(key: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` overridden by ``given``, each value coerced to its default's type.

    Strings are parsed (``"0.1"``, ``"40"``, ``"true"``) because CLI overrides arrive as text. Unknown names
    and values of the wrong type raise SpecError.
    """
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise SpecError(f"{key}: unknown parameter {unknown[0]!r}; valid: backend, {', '.join(defaults)}")
    return {name: _coerce(key, name, given.get(name, default), type(default))
            for name, default in defaults.items()}


def _coerce(key: str, name: str, value: Any, kind: type) -> Any:
    out: Any = None
    if kind is bool:
        if isinstance(value, bool):
            out = value
        elif isinstance(value, str) and value.lower() in ("true", "false"):
            out = value.lower() == "true"
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            out = value
        elif isinstance(value, float) and value.is_integer():
            out = int(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                out = int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                out = float(value)
        if out is not None and not math.isfinite(out):
            out = None
    elif isinstance(value, kind):
        out = value
    if out is None:
        kind_name = {"float": "a finite number", "int": "an integer", "bool": "true or false",
                     "str": "a string"}.get(kind.__name__, kind.__name__)
        raise SpecError(f"{key}: {name} must be {kind_name}, got {name}={value!r}")
    return out


def require(key: str, ok: bool, message: str) -> None:
    """Raise ``SpecError("<key>: <message>")`` unless ``ok``."""
    if not ok:
        raise SpecError(f"{key}: {message}")


def check_linf_eps(key: str, eps: float) -> None:
    """An L∞ budget on [0, 1] images must lie in [0, 1]."""
    require(key, 0.0 <= eps <= 1.0, f"eps must be in [0, 1], got eps={eps}")


def require_positive(key: str, params: Mapping[str, Any], *names: str) -> None:
    """Step counts and step sizes must be > 0."""
    for name in names:
        require(key, params[name] > 0, f"{name} must be > 0, got {name}={params[name]}")
