"""Run the chaos scenarios on a local stack of their own and print the table (``make chaos``).

Run: ``.venv/bin/python -m bench.chaos [--seed N] [--runs 20] [--only kill,control-plane,...]``.
Starts a stack in a new temporary folder (binaries must be built), installs our CRDs and Gateway
API's, runs each scenario (``kills.py``, ``faults.py``) with its own namespace and controller
processes, prints a line per run as it goes, then the table (Markdown, as docs/reliability.md keeps
it) and the figures, and takes the stack down. Exit status 1 when a scenario did not end as expected;
the folder with the controllers' logs is kept then, and its path printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.chaos import faults, kills
from bench.chaos.lab import Lab, Ledger
from bench.chaos.report import Row, table
from canary.kube.client import Kube
from canary.local import binaries, stack
from canary.local.install import CANARY_CRDS, GATEWAY_API_CRDS, install_crds
from tests.e2e.receivers import receiver

Scenario = Callable[[Lab], list[Row]]


def _scenarios(seed: int, runs: int) -> dict[str, Scenario]:
    return {
        "kill": lambda lab: kills.kill_runs(lab, seed=seed, runs=runs),
        "control-plane": faults.control_plane,
        "prometheus-hung": faults.prometheus_hung,
        "isolation": faults.isolation,
        "quota": faults.quota,
    }


def machine() -> str:
    """Cores, CPU model and memory of this machine, for the record."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return f"{os.cpu_count()} cores ({model}), {pages / 2**30:.0f} GiB, Python {platform.python_version()}"


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                           cwd=binaries.REPO_ROOT)
    return found.stdout.strip() or "unknown"


def _run(name: str, scenario: Scenario, lab: Lab) -> list[Row]:
    print(f"\n== {name}", flush=True)
    began = time.monotonic()
    try:
        rows = scenario(lab)
    except Exception as exc:  # one broken scenario must not hide the others' figures
        traceback.print_exc()
        rows = [Row(scenario=name, runs=0, expected="-", got=f"error: {type(exc).__name__}", passed=False,
                    notes=[str(exc).splitlines()[0][:160] if str(exc) else ""])]
    lab.figure(f"{name}: {time.monotonic() - began:.0f} s")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="the kill points' seed (default: a new one, printed)")
    parser.add_argument("--runs", type=int, default=20, help="kill -9 runs, shared by the two routers")
    parser.add_argument("--only", default="", help="comma-separated scenarios: kill, control-plane, "
                        "prometheus-hung, isolation, quota")
    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards, to explore")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "big")
    scenarios = _scenarios(seed, args.runs)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(scenarios)
    unknown = sorted(set(chosen) - set(scenarios))
    if unknown:
        parser.error(f"--only: unknown scenarios {', '.join(unknown)}; known: {', '.join(scenarios)}")

    began = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    print(f"chaos bench, seed {seed}, {started_at:%Y-%m-%d %H:%M} UTC, commit {_commit()}, {machine()}", flush=True)
    binaries.ensure_built()
    folder = Path(tempfile.mkdtemp(prefix="canary-chaos-"))
    options = stack.StackOptions(state_dir=folder / "stack")
    rows: list[Row] = []
    figures: list[str] = []
    try:
        state = stack.up(options)
        print(f"stack up in {time.monotonic() - began:.1f} s ({folder})", flush=True)
        kube = Kube.from_kubeconfig(Path(state.kubeconfig))
        install_crds(kube, CANARY_CRDS)
        install_crds(kube, GATEWAY_API_CRDS)
        with receiver() as chat:
            lab = Lab(options=options, kube=kube, logs=folder / "controllers", ledger=Ledger(chat),
                      figures=figures)
            try:
                for name in chosen:
                    rows += _run(name, scenarios[name], lab)
            finally:
                lab.stop_controllers()
        kube.close()
    finally:
        if args.keep:
            print(f"the stack keeps running: .venv/bin/canary local down --purge --state-dir {options.state_dir}")
        else:
            stack.down(options.state_dir, purge=True)
    passed = bool(rows) and all(row.passed for row in rows)
    elapsed = time.monotonic() - began
    print(f"\n## Chaos: {started_at:%Y-%m-%d}, seed {seed}, commit {_commit()}, {machine()}, "
          f"{elapsed / 60:.1f} min\n")
    print(table(rows))
    print("\nFigures:")
    for line in figures:
        print(f"- {line}")
    if not passed:
        print(f"\nNot all scenarios ended as expected; the controllers' logs are in {folder / 'controllers'}, "
              f"the stack's in {options.state_dir / 'logs'}")
    elif not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
