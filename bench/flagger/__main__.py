"""Run the side-by-side benchmark of our controller and Flagger, print a table per size and write docs/benchmarks.md.

Run: ``.venv/bin/python -m bench.flagger [--sizes 10,100,1000] [--idle 60]`` (``make bench-flagger``,
``SIZES=...`` passes ``--sizes``). Builds Flagger when missing (``binary.py``), then measures each size on
a stack of its own (``run.py``) in a new folder under /tmp, printing its table as it ends; at the end
writes docs/benchmarks.md and docs/images/benchmarks.png (``--no-doc`` to leave them). The folder, with
both controllers' logs and the audit logs, is removed unless ``--keep``. Each size's result is kept in
.cache/bench-flagger/n<N>.json; ``--doc-sizes 10,100,1000`` writes the document from the kept results
of several runs (each table names its commit), ``--doc-only`` without measuring.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.chaos.__main__ import machine
from bench.flagger import binary
from bench.flagger.report import Record, SizeResult, document, kinds, load, plot, save, shard_table, table
from bench.flagger.run import Settings, measure
from canary import __version__, logging
from canary.local import binaries, prometheus
from canary.local.binaries import REPO_ROOT

DOC = REPO_ROOT / "docs" / "benchmarks.md"
PLOT = REPO_ROOT / "docs" / "images" / "benchmarks.png"
RESULTS = binaries.cache_root() / "bench-flagger"
"""Each size's last result, as JSON: the document can show sizes measured in different runs."""
NOTES = (
    "Each controller runs with its own defaults but for the namespace, the router, Prometheus and info logs: "
    "Flagger ticks each canary on a timer of its own (its 2 -threadiness workers only sync the objects), ours "
    "with 32 workers (--workers). Flagger's client limit is raised from its default 100 requests/s (burst "
    "250) to 2000 (burst 4000) with -kubeconfig-qps and -kubeconfig-burst: at 9 GETs per canary per tick its "
    "default holds it back from N=110 upwards (at N=1000 it needs about 900/s), and then its ticks fall "
    "behind and its CPU per tick looks lower for work not done. Ours has no client limit.",
    "Flagger runs each canary's tick on a timer of its own and only then looks at the target (9 GETs per canary "
    "per tick: the target, the primary, three Services, the Canary), so its reaction to a change takes up to one "
    "interval (10 s), more when its workers are busy; ours reacts to the target's watch event.",
    "The idle figures are of canaries that are Initialized (or Succeeded) and waiting for a change: the state most "
    "canaries are in most of the time.",
    "The stack's own clients (kwok, the controller-manager, the scheduler) also load the API server; their idle "
    "requests are listed under each table, not counted for either controller. The stack runs without its "
    "traffic simulator (`canary local up --no-simulator`): the MetricTemplate reads Prometheus's own request "
    "counters, so both controllers' queries find data without it.",
    "Everything shares the machine's cores: both controllers, the API server, etcd, kwok, Prometheus and the bench. "
    "When every canary is released at once the stack is the bottleneck, so release wall times grow with N for "
    "both; compare them side by side, not across sizes.",
)
NOT_1000 = ("N=1000 is not in these tables: on this 2-core machine the local stack could not start the 2000 "
            "primaries' pods in time (after 11 minutes Flagger had initialised none of its 1000 canaries and ours 70, "
            "both waiting for the primaries' rollouts), so there the stack, not the controllers, is the limit. "
            "kube-controller-manager and kube-scheduler then ran with their default client limits (20 and 50 "
            "requests/s); the stack now lifts them as kwokctl does, and N=1000 is to be measured again.")
NO_LAG = ("Tick lag is n/a: our controller exported no canary_tick_lag_seconds histogram at the commit measured "
          "(the bench reads it from /metrics as soon as it does).")



def sizes(text: str) -> list[int]:
    """``--sizes``: comma-separated whole numbers above 0."""
    try:
        found = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes must be whole numbers separated by commas, got {text!r}") from None
    if not found or any(size < 1 for size in found):
        raise argparse.ArgumentTypeError(f"--sizes must be numbers above 0, got {text!r}")
    return found


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                           cwd=REPO_ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           check=False, cwd=REPO_ROOT)
    return (found.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def _prometheus_version() -> str:
    done = subprocess.run([prometheus.executable(), "--version"], capture_output=True, text=True, check=False)
    words = (done.stdout or done.stderr).split()
    return f"Prometheus {words[2]}" if len(words) > 2 else "Prometheus"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flagger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=sizes, default=[10, 100], help="canaries per controller, comma-separated "
                        "(default 10,100, about 10 minutes; 1000 takes about 30 minutes on 2 cores)")
    parser.add_argument("--idle", type=float, default=60, help="seconds of the idle window (default 60)")
    parser.add_argument("--shards", type=int, default=0, help="after each size's side-by-side run, run ours again "
                        "on the same canaries split across this many shards (--shard s0, s1, ...), each measured "
                        "on its own; 0 (default) or 1: not at all")
    parser.add_argument("--keep", action="store_true", help="keep the folder with logs and audit logs")
    parser.add_argument("--no-doc", action="store_true", help="print the tables only")
    parser.add_argument("--doc-sizes", type=sizes, default=None, help="write the document from the kept results "
                        f"of these sizes (each size's last run, kept in {RESULTS}), not only those measured now")
    parser.add_argument("--doc-only", action="store_true", help="measure nothing: write the document from the "
                        "kept results of --doc-sizes (or --sizes)")
    args = parser.parse_args(argv)

    began = time.monotonic()
    started = dt.datetime.now(dt.UTC)
    if not args.doc_only:
        _measure(args.sizes, idle=args.idle, keep=args.keep, shards=args.shards)
        print(f"{len(args.sizes)} sizes in {(time.monotonic() - began) / 60:.1f} min", flush=True)
    if args.no_doc:
        return 0
    shown = args.doc_sizes or args.sizes
    missing = [size for size in shown if not _kept(size).is_file()]
    if missing:
        parser.error(f"no kept result for N={', '.join(map(str, missing))} in {RESULTS}; measure them first")
    _write_doc([load(_kept(size)) for size in shown], date=f"{started:%Y-%m-%d}", idle=args.idle)
    return 0


def _kept(size: int) -> Path:
    return RESULTS / f"n{size}.json"


def _stopped(signum: int, _frame: object) -> None:
    raise SystemExit(f"bench-flagger: stopped by signal {signum}; the stack of the size being measured is taken down")


def _measure(chosen: list[int], *, idle: float, keep: bool, shards: int) -> None:
    logging.configure("error")  # the bench's own watches warn when a stack goes down under them
    signal.signal(signal.SIGTERM, _stopped)  # clean up (stack, controllers) and say why, instead of vanishing
    commit = _commit()
    print(f"bench-flagger, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, {machine()}", flush=True)
    flagger = binary.ensure_built()
    print(f"flagger {binary.pin()}: {flagger}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="canary-bench-flagger-"))
    settings = Settings(folder=folder, idle_seconds=idle, shards=shards)
    for size in chosen:
        result = measure(size, settings, commit=commit, progress=lambda line: print(line, flush=True))
        save(result, _kept(size))
        print(f"\n{table(result)}\n\n{kinds(result)}\n", flush=True)
        if result.shards:
            print(f"{shard_table(result)}\n", flush=True)
    if keep:
        print(f"logs kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


OTHER_SECTIONS = ("\n## One process at size", "\n## Git sync at size")
"""Where the sections other benchmarks write into docs/benchmarks.md begin; a new run keeps them."""


def _kept_sections() -> str:
    current = DOC.read_text() if DOC.exists() else ""
    starts = [found for found in (current.find(heading) for heading in OTHER_SECTIONS) if found >= 0]
    return current[min(starts):] if starts else ""


def _write_doc(results: list[SizeResult], *, date: str, idle: float) -> None:
    versions = binaries.pins()
    shown = ",".join(str(r.size) for r in results)
    shards = max(len(r.shards) for r in results)
    make_shards, cli_shards = (f" SHARDS={shards}", f" --shards {shards}") if shards > 1 else ("", "")
    record = Record(
        date=date, commit=", ".join(dict.fromkeys(r.commit or "unknown" for r in results)), machine=machine(),
        versions=(f"canary-delivery {__version__}, Flagger {binary.pin()}, Kubernetes {versions['kubernetes']}, "
                  f"etcd {versions['etcd']}, kwok {versions['kwok']}, {_prometheus_version()}"),
        command=(f"make bench-flagger SIZES={shown}{make_shards}\n# the same, once make setup has run:\n"
                 f".venv/bin/python -m bench.flagger --sizes {shown}{cli_shards} --idle {idle:g}"),
        plot=str(PLOT.relative_to(DOC.parent)))
    plot(results, PLOT)
    lagless = all(r.measured["ours"].lag_p50 is None for r in results)
    notes = [*NOTES, *([NO_LAG] if lagless else []), *([NOT_1000] if max(r.size for r in results) < 1000 else [])]
    DOC.write_text(document(results, record, notes) + _kept_sections())
    print(f"wrote {DOC.relative_to(REPO_ROOT)} and {PLOT.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
