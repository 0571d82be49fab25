"""Carlini–Wagner L2: success on an easy case with both backends, and torchattacks' documented flaws
(the reason foolbox is the default backend)."""
from __future__ import annotations

import logging

import pytest
import torch

from attacks import cw
from tests.test_attacks import images, linear_model


def easy_model(bias: float = 10.0) -> torch.nn.Module:
    """A 3-class linear model; the default bias keeps every logit positive (see the #184 test)."""
    torch.manual_seed(3)
    return linear_model(torch.randn(3, 64), torch.full((3,), bias))


@pytest.mark.parametrize("backend", list(cw.BACKENDS))
@pytest.mark.parametrize("targeted", [False, True])
def test_paper_preset_succeeds_on_easy_case(backend: str, targeted: bool) -> None:
    model = easy_model()
    x = images(low=0.2, high=0.8)
    y = model(x).argmax(1)
    target = (y + 1) % 3 if targeted else None
    x_adv = cw.build(backend=backend, preset="paper")(model, x, y, target=target)
    pred = model(x_adv).argmax(1)
    assert (pred == target).all() if targeted else (pred != y).all()


def test_torchattacks_cannot_move_exact_0_or_1_pixels(caplog: pytest.LogCaptureFixture) -> None:
    """Half of each image is exactly 0 or 1 (MNIST-like): torchattacks' tanh space freezes those pixels,
    foolbox (like cleverhans) moves them."""
    model = easy_model()
    x = images(low=0.2, high=0.8)
    x[:, :, :4, :] = (torch.arange(4 * 8).view(4, 8) % 2).float()  # top half: exact 0s and 1s
    saturated = (x == 0) | (x == 1)
    y = model(x).argmax(1)
    with caplog.at_level(logging.WARNING, logger="attacks.cw"):
        x_ta = cw.build(backend="torchattacks")(model, x, y)
    assert "exactly 0 or 1" in caplog.text
    assert torch.equal(x_ta[saturated], x[saturated])
    assert (x_ta[~saturated] != x[~saturated]).any()

    x_fb = cw.build(backend="foolbox")(model, x, y)
    assert (model(x_fb).argmax(1) != y).all()
    assert (x_fb[saturated] != x[saturated]).float().mean() > 0.5


def test_torchattacks_margin_is_wrong_for_negative_logits() -> None:
    """torchattacks#184: with every logit negative its margin is max(0 − 0, −κ) = 0, so CW has no loss
    to follow and returns the clean images; foolbox's margin is right."""
    model = easy_model(bias=-100.0)
    x = images(low=0.2, high=0.8)
    y = model(x).argmax(1)
    assert (model(x) < 0).all()
    x_ta = cw.build(backend="torchattacks")(model, x, y)
    assert torch.equal(x_ta, x)
    x_fb = cw.build(backend="foolbox")(model, x, y)
    assert (model(x_fb).argmax(1) != y).all()


def test_foolbox_failures_come_back_clean_not_black() -> None:
    """foolbox returns zeros where it found nothing; a black image must not pass for an adversarial one."""
    model = linear_model(torch.zeros(3, 64), torch.tensor([5.0, 0.0, 0.0]))  # always class 0
    x = images(low=0.2, high=0.8)
    y = torch.zeros(8, dtype=torch.long)
    x_adv = cw.build(backend="foolbox", steps=10)(model, x, y)
    assert torch.equal(x_adv, x)


def test_explicit_parameters_override_the_preset() -> None:
    attack = cw.build(preset="default", steps=50, lr=0.1)
    assert attack.params == {"preset": "default", "binary_search_steps": 9, "steps": 50, "lr": 0.1,
                             "initial_const": 1e-3, "confidence": 0.0, "abort_early": True}
