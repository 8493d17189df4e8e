#!/usr/bin/env python3
"""Build-time overhead of autopass-cc over bare clang-19, measured side by side in one run.

Builds tests/programs/interp-cmake (27 TUs, CMake, a static library + executable) from clean in
three build trees, interleaved round by round (order rotated each round to cancel drift):

* ``bare``     CMAKE_C_COMPILER=clang-19;
* ``miss``     CMAKE_C_COMPILER=autopass-cc, an empty cache (``autopass-cc cache clear`` before
               every round, untimed, so the object cache cannot serve the rebuild): the first build of a project -- the wrapper
               classifies, looks up the TU identity and the object cache, runs clang, stores the
               object (benchmarks/rebuild.py measures the warm rebuild that follows);
* ``kept``     CMAKE_C_COMPILER=autopass-cc, every TU has a cache entry that keeps the user's flags
               (what a session stores for the TUs it examined and left alone: no exact key needed,
               so no preprocessor run); object cache off (AUTOPASS_OBJECT_CACHE=0) so that every
               round compiles;
* ``tuned``    the same with entries holding a pipeline (``-mllvm -inline-threshold=225``, LLVM's
               default: the same code as the user's flags), so every compile also preprocesses
               its TU to compute the exact key -- the cost of a TU that a session tuned.

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


def seed_entries(project: str, env: dict, tree: str, pipeline: dict) -> int:
    """Give every TU the build log has from build tree ``tree`` a cache entry with ``pipeline``
    (``{}``: the user's flags, as a session stores for TUs it leaves alone).  Returns how many
    entries were written."""
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
    if "/build-{tree}/" not in rec["output"]:
        continue
    t = TU(0, rec["tu_id"], rec["source"], rec["source"], rec["output"], rec["cwd"], rec["compiler"], rec["args"],
           classify_record(rec))
    key = tu_cache_key(t, compiler_identity(rec["compiler"]), {project!r})
    s.put_tuned(key.digest, key.tu_id, {{"pipeline": {pipeline!r}, "source": t.rel, "material": key.material,
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
        f.write('run = "build-kept/interp 5"\ntarget = "build-kept/interp"\non_miss = "off"\n')
    compilers = {"bare": "clang-19", "miss": wrapper, "kept": wrapper, "tuned": wrapper}
    for name, cc in compilers.items():
        sh(["cmake", "-S", src, "-B", os.path.join(src, f"build-{name}"), f"-DCMAKE_C_COMPILER={cc}"], src, env)
    # Warm-up build of each (fills the page cache; writes the build log used to seed entries).
    for name in compilers:
        sh(["cmake", "--build", os.path.join(src, f"build-{name}"), "-j", str(args.jobs)], src, env)
    # One cache per tree: the two trees compile the same TUs (same TU identities).
    envs = {"bare": env, "miss": dict(env, AUTOPASS_CACHE_DIR=os.path.join(work, "cache-miss"))}
    for name in ("kept", "tuned"):
        envs[name] = dict(env, AUTOPASS_OBJECT_CACHE="0", AUTOPASS_CACHE_DIR=os.path.join(work, f"cache-{name}"))
    n_kept = seed_entries(src, envs["kept"], "kept", {})
    n_tuned = seed_entries(src, envs["tuned"], "tuned", {"knobs": {"inline-threshold": "225"}})
    print(f"seeded {n_kept} entries keeping the user's flags ('kept') and {n_tuned} tuned ones ('tuned')")
    times = {n: [] for n in compilers}
    names = list(compilers)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
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
    per_tu = {n: (statistics.median(times[n]) - statistics.median(times["bare"])) / n_tus * 1000 for n in names[1:]}
    print("overhead per TU: " + ", ".join(f"{n} {v:.1f} ms" for n, v in per_tu.items()))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
