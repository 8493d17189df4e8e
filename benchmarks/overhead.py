#!/usr/bin/env python3
"""Build-time overhead of autopass-cc over bare clang-19, measured side by side in one run.

Builds tests/programs/interp-cmake (27 TUs, CMake, a static library + executable) from clean in
three build trees, interleaved round by round (order rotated each round to cancel drift):

* ``bare``     CMAKE_C_COMPILER=clang-19;
* ``miss``     CMAKE_C_COMPILER=autopass-cc, an empty cache (``autopass-cc cache clear`` before
               every round, untimed, so the object cache cannot serve the rebuild): the first build of a project -- the wrapper
               classifies, looks up the TU identity and the object cache, runs clang, stores the
               object (benchmarks/rebuild.py measures the warm rebuild that follows);
* ``entries``  CMAKE_C_COMPILER=autopass-cc, every TU has a cache entry that keeps the user's flags
               (after a session: the wrapper also preprocesses to compute the exact key); object
               cache off (AUTOPASS_OBJECT_CACHE=0) so that every round compiles.

Prints the median wall time of each and the ratio to ``bare`` with a paired bootstrap 95% CI.
Usage: python3 benchmarks/overhead.py [--rounds 7] [--jobs 1]
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


def sh(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def seed_entries(project: str, env: dict) -> int:
    """Give every TU in the build log a cache entry that keeps the user's flags (as a session does
    for TUs it leaves alone).  Returns how many entries were written."""
    code = f"""
import os
from autopass_cc import buildlog
from autopass_cc.invocation import classify_record
from autopass_cc.store import open_store
from autopass_cc.toolchain import compiler_identity
from autopass_cc.tuning.program import TU
from autopass_cc.tuning.session import tu_cache_key
compiles, _ = buildlog.latest(buildlog.read({project!r}))
s = open_store(); n = 0
for rec in compiles.values():
    t = TU(0, rec["tu_id"], rec["source"], rec["source"], rec["output"], rec["cwd"], rec["compiler"], rec["args"],
           classify_record(rec))
    key = tu_cache_key(t, compiler_identity(rec["compiler"]), {project!r})
    s.put_tuned(key.digest, key.tu_id, {{"pipeline": {{}}, "source": t.rel, "material": key.material,
                "provenance": {{"status": "benchmark seed"}}}})
    n += 1
print(n)
"""
    return int(sh([sys.executable, "-c", code], project, env).stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    wrapper = os.path.join(sysconfig.get_path("scripts"), "autopass-cc")
    work = tempfile.mkdtemp(prefix="autopass-overhead-")
    src = os.path.join(work, "interp-cmake")
    shutil.copytree(os.path.join(ROOT, "tests", "programs", "interp-cmake"), src)
    env = dict(os.environ, AUTOPASS_CACHE_DIR=os.path.join(work, "cache"))
    env.pop("AUTOPASS_PROJECT", None)
    with open(os.path.join(src, "autopass.toml"), "w") as f:
        f.write('run = "build-entries/interp 5"\ntarget = "build-entries/interp"\non_miss = "off"\n')
    compilers = {"bare": "clang-19", "miss": wrapper, "entries": wrapper}
    for name, cc in compilers.items():
        sh(["cmake", "-S", src, "-B", os.path.join(src, f"build-{name}"), f"-DCMAKE_C_COMPILER={cc}"], src, env)
    # Warm-up build of each (fills the page cache; writes the build log used to seed entries).
    for name in compilers:
        sh(["cmake", "--build", os.path.join(src, f"build-{name}"), "-j", str(args.jobs)], src, env)
    print(f"seeded {seed_entries(src, env)} cache entries for the 'entries' tree")
    envs = {"bare": env, "entries": dict(env, AUTOPASS_OBJECT_CACHE="0"),
            "miss": dict(env, AUTOPASS_CACHE_DIR=os.path.join(work, "cache-miss"))}
    times = {n: [] for n in compilers}
    names = list(compilers)
    for r in range(args.rounds):
        order = names[r % 3:] + names[:r % 3]
        for name in order:
            if name == "miss":  # the 'miss' tree must find nothing (untimed)
                sh([wrapper, "cache", "clear"], src, envs["miss"])
            t0 = time.perf_counter()
            sh(["cmake", "--build", os.path.join(src, f"build-{name}"), "--clean-first", "-j", str(args.jobs)],
               src, envs[name])
            times[name].append(time.perf_counter() - t0)
    n_tus = 27
    print(f"interp-cmake ({n_tus} TUs, -O3), {args.rounds} interleaved rounds, make -j{args.jobs}, wall seconds")
    print(f"{'build':<10}{'median s':>10}{'min s':>9}{'max s':>9}{'time / bare':>14}{'95% CI':>18}")
    for name in names:
        med = statistics.median(times[name])
        if name == "bare":
            print(f"{name:<10}{med:>10.3f}{min(times[name]):>9.3f}{max(times[name]):>9.3f}{'1.000':>14}")
            continue
        # ratio_ci gives median(a)/median(b); a = this build, b = bare -> time ratio (>1 = slower).
        ratio, lo, hi = ratio_ci(times[name], times["bare"])
        print(f"{name:<10}{med:>10.3f}{min(times[name]):>9.3f}{max(times[name]):>9.3f}{ratio:>14.3f}"
              f"{f'{lo:.3f}-{hi:.3f}':>18}")
    per_tu = {n: (statistics.median(times[n]) - statistics.median(times["bare"])) / n_tus * 1000 for n in ("miss", "entries")}
    print(f"overhead per TU: miss {per_tu['miss']:.1f} ms, entries {per_tu['entries']:.1f} ms")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
