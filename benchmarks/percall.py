#!/usr/bin/env python3
"""Cost of one compiler call through autopass-cc against bare clang-19, side by side in one run.

One TU of tests/programs/interp-cmake (src/arena.c, -O3 -MD, ~50 ms to compile), in interleaved
rounds (order rotated each round):

* ``bare``       clang-19 compiles it;
* ``miss``       autopass-cc compiles it with a define that differs every round (an object-cache
                 miss: classify, keys, lookups, clang, and storing the object);
* ``hit``        autopass-cc with the same arguments every round (an object-cache hit);
* ``bare -E``    clang-19 preprocesses an empty file; ``pass -E`` the same through autopass-cc
                 (a pass-through: the call is classified, counted and handed to clang).

Through the compile server when the installed client has one running (the first call starts
it; see autopass_cc/server.py), else standalone; ``--standalone`` forces the latter
(AUTOPASS_SERVER=0).  Prints medians and ratios with paired bootstrap 95% CIs.
Usage: python3 benchmarks/percall.py [--rounds 15] [--standalone]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autopass_cc.tuning.measure import ratio_ci  # noqa: E402


def timed(cmd, cwd, env) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr.decode(errors='replace')[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--standalone", action="store_true", help="AUTOPASS_SERVER=0: no compile server")
    args = ap.parse_args()
    wrapper = os.path.join(sysconfig.get_path("scripts"), "autopass-cc")
    work = tempfile.mkdtemp(prefix="autopass-percall-")
    src = os.path.join(work, "src")
    shutil.copytree(os.path.join(ROOT, "tests", "programs", "interp-cmake", "src"), src)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPASS_")}
    env["AUTOPASS_CACHE_DIR"] = os.path.join(work, "cache")
    if args.standalone:
        env["AUTOPASS_SERVER"] = "0"
    flags = ["-I", src, "-O3", "-g0", "-std=c11", "-MD", "-MF", "arena.o.d", "-c", os.path.join(src, "arena.c"),
             "-o", "arena.o"]
    empty = ["-E", "-x", "c", os.devnull, "-o", os.devnull]
    timed([wrapper, "--version"], work, env)   # starts the server (if any) ...
    time.sleep(1.0)                             # ... and lets it get ready
    timed([wrapper] + flags, work, env)         # fills the object cache for "hit"
    times: dict[str, list[float]] = {n: [] for n in ("bare", "miss", "hit", "bare -E", "pass -E")}
    names = list(times)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if name == "bare":
                cmd = ["clang-19"] + flags
            elif name == "miss":
                cmd = [wrapper, f"-DPERCALL_ROUND={r}_{time.time_ns()}"] + flags
            elif name == "hit":
                cmd = [wrapper] + flags
            elif name == "bare -E":
                cmd = ["clang-19"] + empty
            else:
                cmd = [wrapper] + empty
            times[name].append(timed(cmd, work, env))
    mode = "standalone" if args.standalone else "compile server"
    print(f"one call, interp-cmake src/arena.c (-O3 -MD), {args.rounds} interleaved rounds, {mode}, wall ms")
    print(f"{'call':<10}{'median ms':>11}   vs bare")
    for name in names:
        med = 1000 * statistics.median(times[name])
        base = "bare -E" if name.endswith("-E") else "bare"
        if name == base:
            print(f"{name:<10}{med:>11.1f}")
            continue
        if name == "hit":
            ratio, lo, hi = ratio_ci(times[base], times[name])
            what = f"{ratio:.2f}x faster [{lo:.2f}, {hi:.2f}]"
        else:
            ratio, lo, hi = ratio_ci(times[name], times[base])
            what = (f"time x{ratio:.3f} [{lo:.3f}, {hi:.3f}] "
                    f"(+{med - 1000 * statistics.median(times[base]):.1f} ms)")
        print(f"{name:<10}{med:>11.1f}   {what}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
