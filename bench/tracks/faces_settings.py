"""The ``[settings]`` table of a faces spec, checked without importing torch (``bench validate`` uses it).

    [settings]
    logit_scale = 10.0          # GalleryHead logits = scale · cosine (argmax, so rank-1, does not depend on it)
    threshold_far = 0.01        # the clean verification threshold that attack cells use (FAR on clean pairs)
    attack_yaws = [0, 30, 60]   # optional: attack only probes at these |yaw| (default: every pose bin)
    sheet_ids = 3               # identities shown in the data contact sheet and the GAN rotation sheets (0: none)
    synth = { n_train_ids = 200, n_test_ids = 100, size = 64, n_illums = 5 }   # dataset "synth-faces"
    manifest = { manifest = "multipie/manifest.csv", size = 64, neutral_illum = 7 }   # dataset "face-manifest"
    [settings.face_models.drgan]  # training config of each model (the model's own defaults when absent)
    iterations = 1500

``synth`` holds the options of ``bench.faces.synth.load_synth`` (seed included), ``manifest`` those of
``bench.faces.manifest.load_manifest`` (a relative ``manifest`` path is taken relative to the data root,
``$BENCH_DATA``), plus ``train_split`` / ``test_split`` (default ``train`` / ``test``). Any other dataset
reads its loader options from ``data``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from bench.errors import SpecError

YAWS = tuple(range(-90, 91, 15))
KEYS = {"synth", "manifest", "data", "face_models", "logit_scale", "threshold_far", "attack_yaws", "sheet_ids"}
DATA_TABLE = {"synth-faces": "synth", "face-manifest": "manifest"}
_OPTIONS = {"synth": {"n_train_ids", "n_test_ids", "size", "n_illums", "seed"},
            "manifest": {"manifest", "size", "root", "crop", "neutral_illum", "name", "train_split", "test_split"}}


@dataclass(frozen=True)
class FaceSettings:
    """Checked faces settings. ``data``: loader options; ``face_models``: model key → training config."""

    data_table: str
    data: dict[str, Any]
    train_split: str
    test_split: str
    face_models: dict[str, dict[str, Any]]
    logit_scale: float
    threshold_far: float
    attack_yaws: tuple[int, ...]
    sheet_ids: int


def _unknown(field: str, given: Mapping[str, Any], valid: set[str]) -> None:
    extra = sorted(set(given) - valid)
    if extra:
        raise SpecError(f"{field}: unknown key {extra[0]!r}; valid keys: {', '.join(sorted(valid))}")


def _table(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{field}: expected a table, got {value!r}")
    return dict(value)


def check_settings(settings: Mapping[str, Any], *, dataset: str, known_models: tuple[str, ...] = (),
                   defenses: tuple[str, ...] = ("none",)) -> FaceSettings:
    """Validate the faces settings of a spec (or a cell); raises :class:`SpecError` naming the field.

    ``known_models``: the registered model names that ``face_models`` keys must come from (unchecked if empty).
    """
    _unknown("settings", settings, KEYS)
    bad = [d for d in defenses if d != "none"]
    if bad:
        raise SpecError(f"defenses: the faces track has no defenses yet, got {bad[0]!r}; valid: none")
    table = DATA_TABLE.get(dataset, "data")
    data = _table(f"settings.{table}", settings.get(table, {}))
    if table in _OPTIONS:
        _unknown(f"settings.{table}", data, _OPTIONS[table])
    train_split, test_split = str(data.pop("train_split", "train")), str(data.pop("test_split", "test"))
    if table == "manifest" and not data.get("manifest"):
        raise SpecError("settings.manifest.manifest: the path of a face manifest CSV is required "
                        "(build one with bench.faces.manifest.build_multipie_manifest)")
    face_models = _table("settings.face_models", settings.get("face_models", {}))
    for name, config in face_models.items():
        _table(f"settings.face_models.{name}", config)
    if known_models:
        _unknown("settings.face_models", face_models, set(known_models))
    scale = settings.get("logit_scale", 10.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
        raise SpecError(f"settings.logit_scale: expected a number > 0, got {scale!r}")
    far = settings.get("threshold_far", 0.01)
    if isinstance(far, bool) or not isinstance(far, (int, float)) or not 0 < far < 1:
        raise SpecError(f"settings.threshold_far: expected a number in (0, 1), got {far!r}")
    attack_yaws = settings.get("attack_yaws", [y for y in YAWS if y >= 0])
    if not isinstance(attack_yaws, list) or not attack_yaws or any(
            isinstance(y, bool) or y not in YAWS or y < 0 for y in attack_yaws):
        raise SpecError(f"settings.attack_yaws: expected a non-empty list of |yaw| in "
                        f"{', '.join(str(y) for y in YAWS if y >= 0)}, got {attack_yaws!r}")
    sheet_ids = settings.get("sheet_ids", 3)
    if isinstance(sheet_ids, bool) or not isinstance(sheet_ids, int) or not 0 <= sheet_ids <= 16:
        raise SpecError(f"settings.sheet_ids: expected an integer in 0..16, got {sheet_ids!r}")
    return FaceSettings(data_table=table, data=data, train_split=train_split, test_split=test_split,
                        face_models={k: dict(v) for k, v in face_models.items()}, logit_scale=float(scale),
                        threshold_far=float(far), attack_yaws=tuple(sorted(set(attack_yaws))), sheet_ids=sheet_ids)
