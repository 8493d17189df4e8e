#!/usr/bin/env python3
"""Cold builds and warm rebuilds of tests/programs/interp-cmake (27 TUs): bare clang-19 against
autopass-cc with its object cache, measured side by side in one run.

Four builds, each from clean (``cmake --build --clean-first``), interleaved round by round with
the order rotated each round to cancel drift:

* ``bare``      CMAKE_C_COMPILER=clang-19;
* ``cold``      autopass-cc with an empty cache (``autopass-cc cache clear`` before every round,
                untimed): every TU is compiled and stored -- the overhead of a first build;
* ``warm``      autopass-cc with the cache that tree's previous round filled: every TU restored
                (the rebuild after ``make clean``, a branch switch, a fresh checkout in the same
                directory);
* ``floor``     a stand-in compiler that only copies the finished object (a 3-line shell script):
                what the build costs with free compiles -- the make/CMake/link part no cache can
                remove.

``--against PATH`` adds a fifth, ``against``: a cold build through another autopass-cc client (an
older install's, built from another checkout) with its own empty cache, so that a change to the
compile path is measured against what it replaces in the same run.

Prints the median wall time of each, the ratios with paired bootstrap 95% CIs
(autopass_cc.tuning.measure.ratio_ci), and the per-TU cost of a hit and of a cold miss.
By default both of CMake's usual generators are measured, one after the other: Ninja (the
generator CMake's docs recommend for speed) and Unix Makefiles, whose own work per object (make's
rule evaluation, ``cmake -E cmake_echo_color``, depfile bookkeeping) is a floor of ~20 ms per TU
here, so that no cache can make a warm Makefiles rebuild of this project 5x faster (the floor row
says how much it allows).
Usage: python3 benchmarks/rebuild.py [--rounds 7] [--jobs 1] [--generator Ninja,"Unix Makefiles"]
                                     [--against PATH]
"""

from __future__ import annotations

import argparse
import glob
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

N_TUS = 27
FAKE_CC = """#!/bin/sh
# floor: a compiler whose compiles cost nothing (copies the object clang-19 made before)
for a in "$@"; do case "$prev" in -o) out="$a";; -MF) dep="$a";; esac; [ "$a" = -c ] && c=1; prev="$a"; done
if [ -n "$c" ]; then s="{stash}/$(echo "$out" | tr / _)"; cp "$s" "$out" || exit 1
  if [ -f "$s.d" ]; then cp "$s.d" "$dep"; else echo "$out:" > "$dep"; fi; exit $?; fi
exec clang-19 "$@"
"""


def sh(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--generator", default="Ninja,Unix Makefiles",
                    help="CMake generator(s), comma-separated, measured one after the other")
    ap.add_argument("--against", metavar="PATH",
                    help="another autopass-cc client whose cold build is measured beside this one's")
    args = ap.parse_args()
    if args.against and not os.access(args.against, os.X_OK):
        sys.exit(f"--against {args.against}: not an executable")
    for i, generator in enumerate(g.strip() for g in args.generator.split(",") if g.strip()):
        if i:
            print()
        measure(generator, args.rounds, args.jobs, args.against)


def measure(generator: str, rounds: int, jobs: int, against: str | None = None) -> None:
    """Measure one generator (module docstring) and print its table."""
    args = argparse.Namespace(generator=generator, rounds=rounds, jobs=jobs)
    wrapper = os.path.join(sysconfig.get_path("scripts"), "autopass-cc")
    work = tempfile.mkdtemp(prefix="autopass-rebuild-")
    src = os.path.join(work, "interp-cmake")
    shutil.copytree(os.path.join(ROOT, "tests", "programs", "interp-cmake"), src)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPASS_")}
    names = ["bare", "cold", "warm", "floor"] + (["against"] if against else [])
    compilers = {"bare": "clang-19", "cold": wrapper, "warm": wrapper, "floor": "clang-19", "against": against}
    for name in names:
        sh(["cmake", "-G", args.generator, "-S", src, "-B", os.path.join(src, f"build-{name}"),
            f"-DCMAKE_C_COMPILER={compilers[name]}"], src, base_env)
    # Warm-up build of each (page cache; the floor's stash of finished objects and depfiles).
    stash = os.path.join(work, "stash")
    os.makedirs(stash)
    warm_cache = os.path.join(work, "cache-warm")
    envs = {"bare": base_env, "floor": base_env, "warm": dict(base_env, AUTOPASS_CACHE_DIR=warm_cache),
            "cold": dict(base_env, AUTOPASS_CACHE_DIR=os.path.join(work, "cache-cold")),
            "against": dict(base_env, AUTOPASS_CACHE_DIR=os.path.join(work, "cache-against"))}
    for name in names:
        sh(["cmake", "--build", os.path.join(src, f"build-{name}"), "-j", str(args.jobs)], src, envs[name])
    fb = os.path.join(src, "build-floor")
    for obj in glob.glob(os.path.join(fb, "CMakeFiles", "*", "src", "*.o")):
        rel = os.path.relpath(obj, fb)
        shutil.copy(obj, os.path.join(stash, rel.replace("/", "_")))
        if os.path.exists(obj + ".d"):  # (Ninja reads depfiles into .ninja_deps and removes them)
            shutil.copy(obj + ".d", os.path.join(stash, rel.replace("/", "_") + ".d"))
    fake = os.path.join(work, "fakecc")
    with open(fake, "w") as f:
        f.write(FAKE_CC.format(stash=stash))
    os.chmod(fake, 0o755)
    for rules in glob.glob(os.path.join(fb, "CMakeFiles", "*", "build.make")) + glob.glob(os.path.join(fb, "CMakeFiles", "rules.ninja")):
        text = open(rules).read()
        text = text.replace("/usr/bin/clang-19 $(C_DEFINES)", f"{fake} $(C_DEFINES)").replace(
            "/usr/bin/clang-19 $DEFINES", f"{fake} $DEFINES")
        open(rules, "w").write(text)
    times = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if name in ("cold", "against"):
                sh([compilers[name], "cache", "clear"], src, envs[name])   # untimed
            t0 = time.perf_counter()
            sh(["cmake", "--build", os.path.join(src, f"build-{name}"), "--clean-first", "-j", str(args.jobs)],
               src, envs[name])
            times[name].append(time.perf_counter() - t0)
    check = sh([wrapper, "stats", "--json"], src, envs["warm"]).stdout
    print(f"interp-cmake ({N_TUS} TUs, -O3), {args.generator}, -j{args.jobs}, {args.rounds} interleaved rounds, "
          "wall seconds of a clean build")
    print(f"{'build':<8}{'median s':>10}{'min s':>9}{'max s':>9}   vs bare: ratio [95% CI]")
    for name in names:
        med = statistics.median(times[name])
        if name == "bare":
            print(f"{name:<8}{med:>10.3f}{min(times[name]):>9.3f}{max(times[name]):>9.3f}")
            continue
        # ratio_ci gives median(a)/median(b): bare/this = speedup (>1 faster), this/bare = time ratio.
        if name in ("cold", "against"):
            ratio, lo, hi = ratio_ci(times[name], times["bare"])
            what = f"time x{ratio:.3f} [{lo:.3f}, {hi:.3f}] (overhead {100 * (ratio - 1):+.1f}%)"
        else:
            ratio, lo, hi = ratio_ci(times["bare"], times[name])
            what = f"{ratio:.2f}x faster [{lo:.2f}, {hi:.2f}]"
        print(f"{name:<8}{med:>10.3f}{min(times[name]):>9.3f}{max(times[name]):>9.3f}   {what}")
    m = {n: statistics.median(times[n]) for n in names}
    print(f"per TU over the floor: bare {1000 * (m['bare'] - m['floor']) / N_TUS:.1f} ms (the compile), "
          f"warm hit {1000 * (m['warm'] - m['floor']) / N_TUS:.1f} ms, "
          f"cold {1000 * (m['cold'] - m['floor']) / N_TUS:.1f} ms")
    print(f"best warm speedup the floor allows: {m['bare'] / m['floor']:.2f}x")
    if against:
        ratio, lo, hi = ratio_ci(times["cold"], times["against"])
        print(f"cold vs against ({against}): time x{ratio:.3f} [{lo:.3f}, {hi:.3f}], "
              f"{1000 * (m['cold'] - m['against']) / N_TUS:+.2f} ms per TU")
    import json
    s = json.loads(check)
    print(f"warm cache: {s['object_hits']} object hits, {s['object_misses']} misses, "
          f"{s['objects_cached']} objects, {s['cache_bytes'] / 1024:.0f} KiB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
