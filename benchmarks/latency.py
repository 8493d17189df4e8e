#!/usr/bin/env python3
"""What a cold compile through autopass-cc adds to the build's critical path, per compile, read from
kernel tracepoints rather than from the wall time of whole builds.

Why.  On this 2-core virtual machine the wall time of a clean build of interp-cmake varies by +-5%
from build to build (clang's own time drifts), so ``rebuild.py`` needs many rounds to resolve a
change of 0.2 ms per compile (0.4% of a build).  Here every process's fork, exec and exit is
recorded (``perf record -e sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit``,
system-wide, so the compile server's clang is seen too) and, for each command Ninja starts that runs
a compile, two numbers are taken: the command's lifetime (Ninja's fork to the exit of that child)
and the lifetime of the clang-19 process that compiled (exec to exit).  Their difference is what
the command costs outside clang: Ninja's ``sh -c``, and for autopass-cc the client, the compile
server's worker before and after clang, and the hand-offs between them.  Bare clang-19 has the same
shell and start-up costs, so ``cold - bare`` is autopass-cc's added latency per compile.  Builds run
with ``AUTOPASS_FORK_SERVER=0``: a compile forked by a fork server has no exec to time and skips
clang's start-up altogether, which ``rebuild.py`` measures in whole builds.

Builds: tests/programs/interp-cmake (27 TUs), Ninja, ``-j1`` by default (where the added latency is
the whole overhead); per round, each kind in a shuffled order, from clean, the autopass-cc kinds
with an emptied cache (untimed).  Kinds: ``bare`` (clang-19), ``cold`` (the installed client), and
one per ``--against PATH`` (another client, e.g. an older install's, with its own cache).
Prints per kind the median over builds of the per-build median latency outside clang, the added
latency against bare with a bootstrap 95% CI over rounds (paired), and the sums per build of clang's
own time and of the build's span.  Needs ``perf`` with tracepoint access (root here).
Usage: python3 benchmarks/latency.py [--rounds 7] [--jobs 1] [--against PATH ...]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS = "sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit"
LINE = re.compile(r"\s*(\S.*?)\s+(\d+)\s+\[\d+\]\s+([\d.]+):\s+sched:(\S+):\s*(.*)")
#: A clang-19 process shorter than this is not a compile (the driver of a link, a probe).
MIN_COMPILE_S = 0.02


def per_compile(trace: str) -> tuple[list[float], float, float]:
    """``perf script`` text -> (latency outside clang per compile command in ms, the sum of those
    compiles' clang lifetimes in ms, the span from the first fork to the last exit in ms)."""
    fork, parent, exits, execs, forked = {}, {}, {}, [], set()
    for line in trace.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, t, event, rest = m.group(1), int(m.group(2)), float(m.group(3)), m.group(4), m.group(5)
        if event == "sched_process_fork":
            child = int(re.search(r"child_pid=(\d+)", rest).group(1))
            fork[child], parent[child] = t, comm
            forked.add(pid)
        elif event == "sched_process_exec":
            execs.append((pid, t, re.search(r"filename=(\S+)", rest).group(1)))
        elif event == "sched_process_exit":
            exits.setdefault(pid, t)
    # (a clang-19 that starts a process is a link's driver, running the linker: not a compile)
    clangs = [(t, exits[pid]) for pid, t, name in execs
              if name.endswith("clang-19") and pid in exits and pid not in forked]
    outside, clang_sum = [], 0.0
    for child, comm in parent.items():
        if comm != "ninja" or child not in exits:
            continue
        t0, t1 = fork[child], exits[child]
        inside = [(a, b) for a, b in clangs if t0 <= a and b <= t1]
        if not inside:
            continue
        a, b = max(inside, key=lambda x: x[1] - x[0])
        if b - a < MIN_COMPILE_S:
            continue
        outside.append(1000 * ((t1 - t0) - (b - a)))
        clang_sum += 1000 * (b - a)
    span = 1000 * (max(exits.values()) - min(fork.values())) if fork and exits else 0.0
    return outside, clang_sum, span


def _ci(diffs: list[float], n: int = 4000) -> tuple[float, float]:
    """Bootstrap 95% CI of the median of ``diffs`` (paired per round)."""
    rng = random.Random(0)
    meds = sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def run(cmd, env, cwd=None):
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--against", metavar="PATH", action="append", default=[],
                    help="another autopass-cc client measured beside the installed one (repeatable)")
    args = ap.parse_args()
    if not shutil.which("perf"):
        sys.exit("latency.py: needs perf (apt install linux-perf)")
    probe = subprocess.run(["perf", "record", "-q", "-a", "-e", EVENTS, "-o", os.devnull, "--", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"latency.py: perf cannot record scheduler tracepoints here ({probe.stderr.strip()[:200]}); "
                 "run as root or lower kernel.perf_event_paranoid")
    for a in args.against:
        if not os.access(a, os.X_OK):
            sys.exit(f"--against {a}: not an executable")
    client = os.path.join(sysconfig.get_path("scripts"), "autopass-cc")
    work = tempfile.mkdtemp(prefix="autopass-latency-")
    src = os.path.join(work, "interp-cmake")
    shutil.copytree(os.path.join(ROOT, "tests", "programs", "interp-cmake"), src)
    # A compile forked by a fork server (autopass_cc/forkserver.py) has no exec event to time, and
    # its lifetime lacks the start-up an exec-ed clang pays: measured here is what autopass-cc adds
    # around an exec-ed clang, so fork servers are off (rebuild.py measures builds with them).
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPASS_")}
    base_env["AUTOPASS_FORK_SERVER"] = "0"
    kinds = {"bare": "clang-19", "cold": client}
    kinds.update({f"against{i + 1}": a for i, a in enumerate(args.against)})
    envs = {k: dict(base_env, AUTOPASS_CACHE_DIR=os.path.join(work, f"cache-{k}")) for k in kinds}
    for k, cc in kinds.items():
        run(["cmake", "-G", "Ninja", "-S", src, "-B", os.path.join(work, k), f"-DCMAKE_C_COMPILER={cc}"], envs[k])
        run(["ninja", "-C", os.path.join(work, k), f"-j{args.jobs}"], envs[k])  # warm-up: page cache, servers
    data = os.path.join(work, "perf.data")
    results = collections.defaultdict(list)
    for r in range(args.rounds):
        order = list(kinds)
        random.shuffle(order)
        for k in order:
            run(["ninja", "-C", os.path.join(work, k), "-t", "clean"], envs[k])
            if k != "bare":
                run([kinds[k], "cache", "clear"], envs[k])
            run(["perf", "record", "-q", "-a", "-e", EVENTS, "-o", data, "--",
                 "ninja", "-C", os.path.join(work, k), f"-j{args.jobs}"], envs[k])
            outside, clang_sum, span = per_compile(run(["perf", "script", "-i", data], envs[k]).stdout)
            if not outside:
                sys.exit(f"latency.py: no compile seen in the trace of {k}'s build")
            results[k].append((statistics.median(outside), clang_sum, span, len(outside)))
        print(f"round {r + 1}/{args.rounds}: " + "  ".join(f"{k} {results[k][-1][0]:.2f} ms" for k in kinds),
              file=sys.stderr, flush=True)
    n = results["bare"][0][3]
    print(f"interp-cmake ({n} compiles, -O3), Ninja -j{args.jobs}, {args.rounds} rounds in shuffled order, "
          "cold builds traced with perf")
    print(f"{'kind':<10}{'outside clang ms':>17}{'added ms [95% CI]':>26}{'clang sum ms':>14}{'span ms':>10}")
    bare = [x[0] for x in results["bare"]]
    for k, cc in kinds.items():
        xs = results[k]
        med = statistics.median(x[0] for x in xs)
        added = ""
        if k != "bare":
            diffs = [x[0] - b for x, b in zip(xs, bare)]
            lo, hi = _ci(diffs)
            added = f"{statistics.median(diffs):+.2f} [{lo:+.2f}, {hi:+.2f}]"
        print(f"{k:<10}{med:>17.2f}{added:>26}{statistics.median(x[1] for x in xs):>14.0f}"
              f"{statistics.median(x[2] for x in xs):>10.0f}" + (f"   ({cc})" if k.startswith("against") else ""))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
