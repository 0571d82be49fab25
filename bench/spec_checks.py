"""Field-by-field validation of a merged spec (see :mod:`bench.spec`). Every error names the field, the bad
value and the valid choices; nothing here imports torch."""
from __future__ import annotations

import math
from typing import Any, Mapping

from bench.errors import SpecError
from bench.registry import ATTACKS, DATASETS, DEFENSES, MODELS, UnknownNameError
from bench.spec import (_ENTRY_KEYS, _PAPER_KEYS, _TRAIN_KEYS, LABEL_MODES, THREATS, TRACKS, Spec,
                        _unknown_key_message)

PAPER_STATUSES = ("confirmed", "recalled", "secondary")
NO_ATTACK = "none"


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SpecError(f"{field}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _int(field: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{field}: expected an integer >= {minimum}, got {value!r}")
    return value


def _name(registry: Any, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{field}: expected a name, got {value!r}")
    try:
        return registry.check(value, field=field)
    except UnknownNameError as err:
        raise SpecError(str(err)) from None


def _list(field: str, value: Any) -> list:
    if not isinstance(value, list) or not value:
        raise SpecError(f"{field}: expected a non-empty list, got {value!r}")
    return value


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SpecError(f"{field}: expected a number >= 0, got {value!r}")
    return float(value)


def _check_attack(i: int, entry: Any) -> dict:
    """Structure here; the attack's own factory (torch-free to import) checks its parameters per ε and backend."""
    field = f"attacks[{i}]"
    if not isinstance(entry, Mapping) or "key" not in entry:
        raise SpecError(f"{field}: expected a table with a 'key', got {entry!r}")
    entry = dict(entry)
    if entry["key"] != NO_ATTACK:
        _name(ATTACKS, f"{field}.key", entry["key"])
    if "eps" in entry:
        eps = entry["eps"] if isinstance(entry["eps"], list) else [entry["eps"]]
        entry["eps"] = [_number(f"{field}.eps", e) for e in _list(f"{field}.eps", eps)]
    if "backend" in entry and "backends" in entry:
        raise SpecError(f"{field}: give 'backend' or 'backends', not both")
    backends = entry.pop("backends", [entry.pop("backend")] if "backend" in entry else [None])
    for b in _list(f"{field}.backends", backends):
        if b is not None and not isinstance(b, str):
            raise SpecError(f"{field}.backends: expected names, got {b!r}")
    entry["backends"] = backends
    if "threats" in entry:  # restrict an attack to some threat settings (e.g. PGD only through BPDA)
        entry["threats"] = [_choice(f"{field}.threats", t, THREATS) for t in _list(f"{field}.threats", entry["threats"])]
    if "targeted" in entry and not isinstance(entry["targeted"], bool):
        raise SpecError(f"{field}.targeted: expected true or false, got {entry['targeted']!r}")
    if entry["key"] != NO_ATTACK:
        factory = ATTACKS.get(entry["key"])
        params = {k: v for k, v in entry.items() if k not in _ENTRY_KEYS["attacks"]}
        for backend in backends:
            for eps in entry.get("eps", [None]):
                try:
                    factory(**({"backend": backend} if backend else {}), **({"eps": eps} if eps is not None else {}),
                            **params)
                except SpecError as err:
                    raise SpecError(f"{field}: {err}") from None
    return entry


def _check_defense(i: int, entry: Any, threats: tuple[str, ...]) -> dict:
    field = f"defenses[{i}]"
    if isinstance(entry, str):
        entry = {"key": entry}
    if not isinstance(entry, Mapping) or "key" not in entry:
        raise SpecError(f"{field}: expected a table with a 'key', got {entry!r}")
    unknown = set(entry) - _ENTRY_KEYS["defenses"]
    if unknown:
        raise SpecError(_unknown_key_message(field, sorted(unknown)[0], _ENTRY_KEYS["defenses"]))
    entry = dict(entry)
    _name(DEFENSES, f"{field}.key", entry["key"])
    if not isinstance(entry.setdefault("params", {}), Mapping):
        raise SpecError(f"{field}.params: expected a table, got {entry['params']!r}")
    entry.setdefault("label", entry["key"])
    entry["threats"] = [_choice(f"{field}.threats", t, THREATS)
                        for t in _list(f"{field}.threats", entry.get("threats", list(threats)))]
    return entry


def _check_paper(i: int, entry: Any) -> dict:
    field = f"paper[{i}]"
    if not isinstance(entry, Mapping):
        raise SpecError(f"{field}: expected a table, got {entry!r}")
    unknown = set(entry) - _PAPER_KEYS
    if unknown:
        raise SpecError(_unknown_key_message(field, sorted(unknown)[0], _PAPER_KEYS))
    for required in ("value", "source", "status"):
        if required not in entry:
            raise SpecError(f"{field}: missing {required!r}")
    _choice(f"{field}.status", entry["status"], PAPER_STATUSES)
    return dict(entry)


def validate(data: Mapping[str, Any], *, profile: str) -> Spec:
    """Check every field of a merged spec and return the frozen :class:`Spec`."""
    from bench.builtins import register_builtins
    register_builtins()
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise SpecError(f"key: expected a non-empty name, got {key!r}")
    track = _choice("track", data.get("track", "classifier"), TRACKS)
    threats = tuple(_choice("threats", t, THREATS) for t in _list("threats", data.get("threats", ["oblivious"])))
    train = dict(data.get("train", {}))
    unknown = set(train) - _TRAIN_KEYS
    if unknown:
        raise SpecError(_unknown_key_message("train", sorted(unknown)[0], _TRAIN_KEYS))
    if "epochs" in train:
        _int("train.epochs", train["epochs"], minimum=1)
    if train.get("train_images") is not None:
        _int("train.train_images", train["train_images"], minimum=1)
    settings = data.get("settings", {})
    if not isinstance(settings, Mapping):
        raise SpecError(f"settings: expected a table, got {settings!r}")
    if track == "faces":  # the faces track's settings (data sizes, model configs) are checked here, torch-free
        from bench.tracks.faces_settings import check_settings
        defenses = [d if isinstance(d, str) else dict(d).get("key") for d in data.get("defenses", ["none"])]
        check_settings(settings, dataset=str(data.get("dataset")), known_models=tuple(MODELS.names()),
                       defenses=tuple(defenses))
    resolved = dict(data)
    resolved.update(track=track, threats=list(threats), label_mode=data.get("label_mode", "true"),
                    seed=data.get("seed", 0), batch_size=data.get("batch_size", 100), eot=data.get("eot", 1))
    return Spec(
        key=key, profile=profile, title=str(data.get("title", key)), track=track,
        dataset=_name(DATASETS, "dataset", data.get("dataset")),
        models=tuple(_name(MODELS, "models", m) for m in _list("models", data.get("models"))),
        defenses=tuple(_check_defense(i, d, threats) for i, d in enumerate(_list("defenses", data.get("defenses", ["none"])))),
        attacks=tuple(_check_attack(i, a) for i, a in enumerate(_list("attacks", data.get("attacks")))),
        threats=threats,
        label_mode=_choice("label_mode", resolved["label_mode"], LABEL_MODES),
        n=_int("n", data.get("n"), minimum=1),
        n_defended=_int("n_defended", data.get("n_defended", data.get("n")), minimum=1),
        seed=_int("seed", resolved["seed"], minimum=0),
        batch_size=_int("batch_size", resolved["batch_size"], minimum=1),
        eot=_int("eot", resolved["eot"], minimum=1),
        train=train, settings=dict(settings),
        paper=tuple(_check_paper(i, p) for i, p in enumerate(data.get("paper", []))),
        paper_source=str(data.get("paper_source", "")), notes=str(data.get("notes", "")),
        raw={**resolved, "profile": profile},
    )
