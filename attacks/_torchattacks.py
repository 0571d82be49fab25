"""Running a torchattacks attack object under our contract (imported only by adapters, when they run)."""
from __future__ import annotations

import contextlib
import io
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# torchattacks' Attack.__init__ prints this when the model has no parameters (a GalleryHead on raw pixels);
# run() sets the device from the input instead, so the line is noise and is swallowed by make().
_DEVICE_NOTICE = "Failed to set device automatically, please try set_device() manual.\n"


def make(name: str, model: Any, **params: Any):
    """``torchattacks.<name>(model, **params)``, without its stray device notice on stdout (see ``run``)."""
    import torchattacks

    with contextlib.redirect_stdout(io.StringIO()) as printed:
        atk = getattr(torchattacks, name)(model, **params)
    sys.stdout.write(printed.getvalue().replace(_DEVICE_NOTICE, "", 1))
    return atk


def run(atk, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Run a configured ``torchattacks.Attack`` on x (N, C, H, W) in [0, 1].

    torchattacks infers its device from the model's first parameter; we use the input's instead so that a
    parameter-free wrapper works too. Targeted mode uses the given labels as targets. torchattacks puts the
    model in eval mode for the attack; ``Attack.__call__`` restores every module's flag afterwards.
    """
    atk.set_device(x.device)
    if target is None:
        return atk(x, y)
    atk.set_mode_targeted_by_label(quiet=True)
    return atk(x, target)
