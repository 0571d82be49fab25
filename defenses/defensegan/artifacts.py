"""Shipped generator weights: export from a training run, verify by SHA-256, load with provenance.

An artifact is two files in ``defenses/defensegan/weights/``, and optionally a third::

    <dataset>-wgan-gp.pt        fp16 generator state dict (torch.save)
    <dataset>-wgan-gp.json      provenance: command, iterations, seed, data checksums, config, sha256 of the .pt
    <dataset>-wgan-gp.state.pt  the training run's full state at that iteration (G, critic, both Adam states,
                                RNG, data order; ``state`` in the provenance gives its SHA-256 and iteration)
    <dataset>-wgan-gp.critic.pt the critic at that iteration, fp16 (``critic`` in the provenance: SHA-256),
                                exported with ``latest``: 2 MB that let a later run continue the generator
                                without re-training a critic (:mod:`defenses.defensegan.lineage`)

The third file exists because this generator is trained across sessions on machines that keep no cache:
``python -m defenses.defensegan.train`` seeds an empty run folder from it (after checking its SHA-256 and
training key) and continues exactly where the shipped run stopped, instead of starting again from zero.

Export the generator of a run at iteration N (a snapshot ``G-iter<N>.fp16.pt``, or ``state.pt`` when
its iteration is N; ``latest`` takes ``state.pt``)::

    python -m defenses.defensegan.artifacts export --dataset mnist --iteration N
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from bench.cache import atomic_write_text, sha256_file
from bench.errors import BenchError
from defenses.defensegan.nets import ARCH, Generator

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def artifact_paths(dataset: str, weights_dir: Path | None = None) -> tuple[Path, Path]:
    """(weights file, provenance file) of the shipped generator for ``dataset`` (default folder: ``weights/``)."""
    stem = Path(weights_dir or WEIGHTS_DIR) / f"{dataset}-wgan-gp"
    return stem.with_suffix(".pt"), stem.with_suffix(".json")


def state_path(dataset: str, weights_dir: Path | None = None) -> Path:
    """The shipped full training state of ``dataset``'s generator run (may not exist)."""
    return Path(weights_dir or WEIGHTS_DIR) / f"{dataset}-wgan-gp.state.pt"


def critic_path(dataset: str, weights_dir: Path | None = None) -> Path:
    """The shipped fp16 critic of ``dataset``'s generator (may not exist)."""
    return Path(weights_dir or WEIGHTS_DIR) / f"{dataset}-wgan-gp.critic.pt"


def load_critic(dataset: str, prov: dict[str, Any], weights_dir: Path | None = None) -> dict[str, torch.Tensor] | None:
    """The shipped critic's state dict when the provenance names one (SHA-256 checked), else None."""
    entry = prov.get("critic")
    if not entry:
        return None
    path = critic_path(dataset, weights_dir)
    actual = sha256_file(path) if path.exists() else "missing"
    if actual != entry.get("sha256"):
        raise BenchError(f"SHA-256 mismatch for {path}: expected {entry.get('sha256')}, got {actual}")
    return torch.load(path, map_location="cpu", weights_only=True)


def shipped_state(dataset: str, key: str, weights_dir: Path | None = None) -> tuple[Path, int] | None:
    """(verified state file, its iteration) when a training state for run ``key`` is shipped, else None.

    A shipped state of another run (other data, recipe or seed) is ignored; one whose SHA-256 differs from
    its provenance raises :class:`BenchError`, since training on from it would silently fork the run.
    """
    path, (_, js) = state_path(dataset, weights_dir), artifact_paths(dataset, weights_dir)
    if not (path.exists() and js.exists()):
        return None
    prov = json.loads(js.read_text())
    state = prov.get("state") or {}
    if prov.get("key") != key or not state:
        return None
    actual = sha256_file(path)
    if actual != state.get("sha256"):
        raise BenchError(f"SHA-256 mismatch for {path}: expected {state.get('sha256')} (from {js.name}), "
                         f"got {actual}")
    return path, int(state["iteration"])


def save_artifact(state_dict: dict[str, torch.Tensor], provenance: dict[str, Any], *, dataset: str,
                  weights_dir: Path | None = None) -> tuple[Path, Path]:
    """Write the fp16 state dict and its provenance (with the file's SHA-256); return both paths."""
    pt, js = artifact_paths(dataset, weights_dir)
    pt.parent.mkdir(parents=True, exist_ok=True)
    tmp = pt.with_name(pt.name + ".tmp")
    torch.save({k: v.detach().to(torch.float16).cpu().contiguous() for k, v in state_dict.items()}, tmp)
    tmp.replace(pt)
    prov = {**provenance, "arch": ARCH, "dataset": dataset, "file": pt.name, "sha256": sha256_file(pt)}
    atomic_write_text(js, json.dumps(prov, indent=2, sort_keys=True) + "\n")
    return pt, js


def verify_artifact(dataset: str, weights_dir: Path | None = None) -> dict[str, Any]:
    """Check the weights file against the SHA-256 in its provenance; return the provenance.

    Raises :class:`BenchError` naming the file when either file is missing or the digest differs.
    """
    pt, js = artifact_paths(dataset, weights_dir)
    for path in (pt, js):
        if not path.exists():
            raise BenchError(f"Defense-GAN generator artifact missing: {path}")
    try:
        prov = json.loads(js.read_text())
    except json.JSONDecodeError as err:
        raise BenchError(f"Defense-GAN provenance file is not valid JSON: {js} ({err})") from None
    actual = sha256_file(pt)
    if actual != prov.get("sha256"):
        raise BenchError(f"SHA-256 mismatch for {pt}: expected {prov.get('sha256')} (from {js.name}), "
                         f"got {actual}")
    return prov


def generator_from_state(state_dict: dict[str, torch.Tensor], *, latent_dim: int = 128, dim: int = 64) -> Generator:
    """A frozen fp32 generator in eval mode from a (possibly fp16) state dict."""
    gen = Generator(latent_dim=latent_dim, dim=dim)
    gen.load_state_dict({k: v.to(torch.float32) for k, v in state_dict.items()})
    gen.requires_grad_(False)
    return gen.eval()


def load_artifact(dataset: str, weights_dir: Path | None = None) -> tuple[Generator, dict[str, Any]]:
    """Verify and load the shipped generator for ``dataset``: (frozen Generator in eval mode, provenance)."""
    prov = verify_artifact(dataset, weights_dir)
    pt, _ = artifact_paths(dataset, weights_dir)
    cfg = prov.get("config", {})
    gen = generator_from_state(torch.load(pt, map_location="cpu", weights_only=True),
                               latent_dim=cfg.get("latent_dim", 128), dim=cfg.get("dim", 64))
    return gen, prov


def generator_state_at(run: Path, iteration: int | str) -> tuple[dict[str, torch.Tensor], int]:
    """The generator state dict of a training run folder at ``iteration`` (int or ``"latest"``)."""
    from defenses.defensegan.wgan_gp import list_snapshots

    run = Path(run)
    state_file = run / "state.pt"
    snaps = list_snapshots(run)
    if iteration != "latest" and int(iteration) in snaps:
        return torch.load(snaps[int(iteration)], map_location="cpu", weights_only=True), int(iteration)
    if state_file.exists():
        state = torch.load(state_file, map_location="cpu", weights_only=True)
        if iteration == "latest" or int(state["iteration"]) == int(iteration):
            return state["G"], int(state["iteration"])
        have = f"snapshots {sorted(snaps)}, state.pt at {int(state['iteration'])}"
    else:
        have = f"snapshots {sorted(snaps)}, no state.pt"
    raise BenchError(f"iteration {iteration!r} not available in {run}: {have}")


def export_from_run(dataset: str, run: Path, *, iteration: int | str = "latest", weights_dir: Path | None = None,
                    with_state: bool = False) -> tuple[Path, Path]:
    """Export the generator of training folder ``run`` at ``iteration`` as the shipped artifact.

    ``with_state`` also ships the run's full training state (``state.pt``), which must be at that iteration,
    so that training can go on from it elsewhere; without it a previously shipped state is removed, since it
    would no longer match the shipped generator.
    """
    from defenses.defensegan import lineage

    state, it = generator_state_at(run, iteration)
    meta_file = Path(run) / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    prov = {"iterations": it, "seed": meta.get("config", {}).get("seed"), "config": meta.get("config", {}),
            "command": meta.get("command"), "key": meta.get("key"),
            "data_tensor_sha256": meta.get("data_tensor_sha256"), "dataset_sha256": meta.get("dataset_sha256"),
            "num_images": meta.get("num_images"), "torch": meta.get("torch"), "run_dir": str(run)}
    if meta.get("parent"):
        prov["lineage"] = lineage.extend(meta["parent_provenance"], meta, it)
    _, js = artifact_paths(dataset, weights_dir)
    previous = json.loads(js.read_text()) if js.exists() else {}
    history = {seg.get("key") for seg in lineage.lineage(prov)} | {prov["key"]}
    if previous.get("key") in history and previous.get("quality_curve"):
        prov["quality_curve"] = previous["quality_curve"]  # earlier snapshots of this history stay measured
    _export_critic(dataset, run, it, prov, weights_dir)
    shipped = state_path(dataset, weights_dir)
    if with_state:
        full = torch.load(Path(run) / "state.pt", map_location="cpu", weights_only=True)
        if int(full["iteration"]) != it:
            raise BenchError(f"{run}/state.pt is at iteration {int(full['iteration'])}, not {it}: export 'latest' "
                             "to ship the training state")
        shipped.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(run) / "state.pt", shipped)
        prov["state"] = {"file": shipped.name, "iteration": it, "sha256": sha256_file(shipped)}
    else:
        shipped.unlink(missing_ok=True)
    return save_artifact(state, prov, dataset=dataset, weights_dir=weights_dir)


def _export_critic(dataset: str, run: Path, iteration: int, prov: dict[str, Any], weights_dir: Path | None) -> None:
    """Ship the run's critic (fp16) when its ``state.pt`` is at ``iteration``; else remove a stale one."""
    path = critic_path(dataset, weights_dir)
    state_file = Path(run) / "state.pt"
    full = torch.load(state_file, map_location="cpu", weights_only=True) if state_file.exists() else None
    if full is None or int(full["iteration"]) != iteration:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({k: v.to(torch.float16).contiguous() for k, v in full["D"].items()}, tmp)
    tmp.replace(path)
    prov["critic"] = {"file": path.name, "iteration": iteration, "sha256": sha256_file(path)}


def find_run(dataset: str, recipe_config: Any = None) -> Path:
    """The cached training folder of ``dataset`` with the recipe (default: ``WGANConfig()``, seed 0) whose
    ``state.pt`` is newest: the original run, or the latest one that continued a shipped generator (any
    precision)."""
    from defenses.defensegan.train import WGANConfig, run_dir

    recipe = {k: v for k, v in (recipe_config or WGANConfig()).keyed().items() if k != "precision"}
    found = []
    for meta_file in run_dir(dataset, "x").parent.glob(f"{dataset}-*/meta.json"):
        meta = json.loads(meta_file.read_text())
        cfg = {k: v for k, v in WGANConfig(**_config_fields(meta.get("config", {}))).keyed().items()
               if k != "precision"}
        state = meta_file.parent / "state.pt"
        if meta.get("dataset") == dataset and cfg == recipe and state.exists():
            found.append((state.stat().st_mtime, meta_file.parent))
    if not found:
        raise BenchError(f"no Defense-GAN training run for dataset {dataset!r} in {run_dir(dataset, 'x').parent}")
    return max(found)[1]


def _config_fields(cfg: dict[str, Any]) -> dict[str, Any]:
    from defenses.defensegan.wgan_gp import WGANConfig

    known = {f.name for f in WGANConfig.__dataclass_fields__.values()}
    out = {k: v for k, v in cfg.items() if k in known}
    for k in ("betas", "snapshot_at"):
        if k in out:
            out[k] = tuple(out[k])
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m defenses.defensegan.artifacts")
    sub = p.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="export a training run's generator as the shipped artifact")
    ex.add_argument("--dataset", required=True, choices=["mnist", "fashion-mnist"])
    ex.add_argument("--iteration", default="latest", help="an iteration with a snapshot, or 'latest'")
    ex.add_argument("--run-dir", type=Path, default=None, help="training folder (default: the cached run)")
    ex.add_argument("--with-state", action="store_true",
                    help="also ship the full training state so training can resume from it on another machine")
    ve = sub.add_parser("verify", help="check a shipped artifact's SHA-256")
    ve.add_argument("--dataset", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cmd == "export":
        run = args.run_dir or find_run(args.dataset)
        it = args.iteration if args.iteration == "latest" else int(args.iteration)
        pt, js = export_from_run(args.dataset, run, iteration=it, with_state=args.with_state)
        log.info("wrote %s and %s", pt, js)
    else:
        log.info("ok: %s", json.dumps(verify_artifact(args.dataset)))


if __name__ == "__main__":
    from bench.errors import run_module

    run_module(main, "python -m defenses.defensegan.artifacts")
