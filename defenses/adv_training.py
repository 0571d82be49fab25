"""The registered ``adv-training`` defense: FGSM adversarial training (the Defense-GAN tables' "Adv. Tr.").

Recipe of the released Defense-GAN code (``--defense_type adv_tr``: cleverhans ``model_train`` with
``predictions_adv``): every batch minimises (CE(f(x), y) + CE(f(x_adv), y)) / 2 with
x_adv = clip(x + ε·sign(∇ₓ CE), 0, 1) computed from the model's current weights (training mode) and
treated as a constant; same optimiser, epochs and batch size as the cell's ordinary classifier
(:class:`bench.models.training.TrainConfig`). ε = 0.15 is the code's ``fgsm_eps_tr`` default: the ε the
paper used for its Adv. Tr. column is not stated anywhere we could find (reference/defensegan.md §2.4, §3.4).

One known difference: cleverhans' FGSM there is called without ``y``, so it perturbs along the loss of the
model's *predicted* labels (against label leaking); the harness's training loop uses the true labels.
On a classifier that fits its training set the two coincide for nearly every image.
"""
from __future__ import annotations

from bench.errors import BenchError
from defenses.base import DefenseContext, DefenseParts, Identity

RECIPE = ("FGSM adversarial training: loss = (CE(clean) + CE(FGSM_eps(clean))) / 2, FGSM from the current "
          "weights with true labels, clipped to [0, 1] (kabkabm/defensegan adv_tr via cleverhans model_train)")


def build(ctx: DefenseContext, *, eps: float = 0.15) -> DefenseParts:
    """No purifier; the classifier is the cell's architecture trained adversarially with FGSM at ``eps``."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1:
        raise BenchError(f"invalid adv-training eps: {eps!r}; expected a number in (0, 1]")
    classifier = ctx.train_classifier(adv_eps=float(eps))
    notes = {"eps": float(eps), "recipe": RECIPE,
             "eps_source": "code default fgsm_eps_tr = 0.15; the paper's Adv. Tr. eps: NOT FOUND",
             "label_source": "true labels (cleverhans used the model's predictions, y=None)"}
    return DefenseParts(purifier=Identity(), classifier=classifier, notes=notes)
