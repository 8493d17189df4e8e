#!/usr/bin/env python3
"""Tuned vs ``-O3`` speedups on our test programs, measured side by side in one run.

For each program (built with its own build system: make, autotools, CMake) it builds

* ``O3``      -- plain clang-19 with the program's default flags (-O3);
* one tuned binary per proposer (``--proposers offline,random`` by default): a fresh copy built
  with ``CC=autopass-cc``, a session of ``--budget`` trials with that proposer, then a clean rebuild
  that takes the pipelines from the cache (a fresh cache per proposer).  Sessions record an
  instrumentation profile of the run (tuning/pgo.py) and both proposers may use it per TU, so a
  tuned binary may be partly profile-guided: the ``winner`` in --json shows which TUs are;
* ``PGO``     -- clang's instrumented PGO of the whole program (IR-level -fprofile-generate, as
  sessions record it; one run of the run command, llvm-profdata-19 merge, -fprofile-instr-use)
  for reference;

then runs every binary's run command in interleaved rounds (order rotated each round), checks
each prints what ``O3`` prints, and reports per variant the median CPU time, the speedup
median(O3) / median(variant) with a paired bootstrap 95% CI, and the geomean over programs.

Any other project: ``--project FILE.json`` (repeatable), a JSON object with ``name``, ``dir``
(its source tree, copied per variant), ``build`` (a list of shell commands in which ``{cc}``,
``{cflags}`` and ``{ldflags}`` stand for the compiler, the C flags -- ``-O3`` unless PGO's -- and
the link flags), ``clean`` (a shell command), ``run`` (the run command, from the project's root)
and ``target`` (the binary the run command times).  For example, Lua's own makefile::

    {"name": "lua", "dir": "/src/lua-5.4.4",
     "build": ["make -j2 -C src posix CC={cc} MYCFLAGS='{cflags}' MYLDFLAGS='{ldflags}'"],
     "clean": "make -C src clean", "run": "src/lua bench.lua", "target": "src/lua"}

Several seeds: ``--seeds 0,1,2`` tunes one binary per proposer and seed (variants ``offline@0``,
``random@1``, ...), all timed in the same interleaved rounds.  A search with a fixed seed draws the
same configurations every run, so one seed measures one draw of each proposer, not its average
(session 12: random search gave a geomean of 1.058 with seed 0 and 1.025 with seed 1 on the same
four programs).  With several seeds it also prints, per proposer, the geomean over programs for
each seed and over all (program, seed) pairs, and a head-to-head of the first two proposers: for
each pair, median(second) / median(first) with its paired bootstrap CI, counted as a win, a loss
or a tie (CI containing 1).

Usage: python3 benchmarks/speedup.py [--budget 16] [--rounds 15] [--programs demo,kernels-make]
       [--project lua.json] [--proposers offline,random] [--seeds 0,1,2] [--no-pgo] [--wrapper PATH]
       [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
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

from autopass_cc.tuning.measure import ratio_ci, run_command  # noqa: E402


def _make(cc, cflags=None, ldflags=None):
    cmd = ["make", "-j2", f"CC={cc}"]
    if cflags:
        cmd.append(f"CFLAGS={cflags}")
    if ldflags:
        cmd.append(f"LDFLAGS={ldflags}")
    return [cmd]


def _cmake(cc, cflags=None, ldflags=None, lang="C"):
    conf = ["cmake", "-S", ".", "-B", "build", f"-DCMAKE_{lang}_COMPILER={cc}"]
    if cflags:
        conf.append(f"-DCMAKE_{lang}_FLAGS={cflags}")
    if ldflags:
        conf.append(f"-DCMAKE_EXE_LINKER_FLAGS={ldflags}")
    return [conf, ["cmake", "--build", "build", "-j2"]]


def _cmake_cxx(cc, cflags=None, ldflags=None):
    """C++ through CMake: the C driver's name mapped to its C++ sibling (autopass-cc -> autopass-c++,
    clang-19 -> clang++-19)."""
    head, name = os.path.split(cc)
    cxx = os.path.join(head, name.replace("autopass-cc", "autopass-c++").replace("clang-", "clang++-"))
    return _cmake(cxx, cflags, ldflags, lang="CXX")


def _autotools(cc, cflags=None, ldflags=None):
    conf = ["./configure", f"CC={cc}"]
    if cflags:
        conf.append(f"CFLAGS={cflags}")
    if ldflags:
        conf.append(f"LDFLAGS={ldflags}")
    return [["autoreconf", "-fi"], conf, ["make", "-j2"]]


#: name -> (source dir, build recipe, clean command, run command from the project root, target)
PROGRAMS = {
    "demo": ("examples/demo", _make, ["make", "clean"], "./demo 300", "demo"),
    "kernels-make": ("tests/programs/kernels-make", _make, ["make", "clean"], "./kernels 400", "kernels"),
    "lzpack-autotools": ("tests/programs/lzpack-autotools", _autotools, ["make", "clean"],
                         "src/lzpack 160", "src/lzpack"),
    "tally-libtool": ("tests/programs/tally-libtool", _autotools, ["make", "clean"],
                      "src/tally 400", "src/tally"),
    "graphs-cxx": ("tests/programs/graphs-cxx", _cmake_cxx, ["cmake", "--build", "build", "--target", "clean"],
                   "build/graphs 5", "build/graphs"),
    "interp-cmake": ("tests/programs/interp-cmake", _cmake, ["cmake", "--build", "build", "--target", "clean"],
                     "build/interp 25", "build/interp"),
}


def add_project(path: str) -> str:
    """Register the project described by the JSON file at ``path`` (module docstring) in
    PROGRAMS; returns its name.  Exits with one line on a malformed file."""
    try:
        with open(path) as f:
            spec = json.load(f)
        name, src, build, clean = spec["name"], os.path.abspath(spec["dir"]), spec["build"], spec["clean"]
        run, target = spec["run"], spec["target"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"speedup.py: bad --project {path}: {e!r}")

    def recipe(cc, cflags=None, ldflags=None):
        fill = {"cc": cc, "cflags": cflags or "-O3", "ldflags": ldflags or ""}
        return [["sh", "-c", cmd.format(**fill)] for cmd in build]
    PROGRAMS[name] = (src, recipe, ["sh", "-c", clean], run, target)
    return name


def sh(cmd, cwd, env, quiet=True):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=quiet, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit(f"failed in {cwd}: {' '.join(cmd)}\n{(r.stdout or '')[-2000:]}\n{(r.stderr or '')[-2000:]}")
    return r


def fresh_copy(name: str, work: str, variant: str) -> str:
    src = os.path.join(ROOT, PROGRAMS[name][0])
    dst = os.path.join(work, name, variant)
    shutil.copytree(src, dst, symlinks=True)
    return dst


def build_o3(name, work, env):
    d = fresh_copy(name, work, "O3")
    for cmd in PROGRAMS[name][1]("clang-19"):
        sh(cmd, d, env)
    return d


def build_tuned(name, work, env, wrapper, proposer, budget, seed, variant=None):
    variant = (variant or proposer).replace("@", "-seed")  # (no "@" in a build tree's path)
    d = fresh_copy(name, work, variant)
    _, recipe, clean, run_cmd, target = PROGRAMS[name]
    e = dict(env, AUTOPASS_CACHE_DIR=os.path.join(work, name, f"cache-{variant}"))
    sh([wrapper, "init", "--run", run_cmd, "--target", target, "--on-miss", "off", "--budget", str(budget)], d, e)
    for cmd in recipe(wrapper):
        sh(cmd, d, e)
    t0 = time.time()
    r = sh([wrapper, "tune", "--budget", str(budget), "--proposer", proposer, "--seed", str(seed), "--json", "--quiet"], d, e)
    report = json.loads(r.stdout)
    sh(clean, d, e)
    sh(recipe(wrapper)[-1], d, e)
    counts = {}
    for t in report["trials"]:
        counts[t["verdict"]] = counts.get(t["verdict"], 0) + 1
    info = {"session_speedup": report.get("speedup"), "trials": len(report["trials"]), "verdicts": counts,
            "minutes": round((time.time() - t0) / 60, 1), "winner": report.get("winner"),
            "hot": [(os.path.basename(t["source"]), round(t["weight"] or 0, 3)) for t in report.get("tus", [])]}
    return d, info


def build_pgo(name, work, env):
    d = fresh_copy(name, work, "PGO")
    _, recipe, clean, run_cmd, _ = PROGRAMS[name]
    prof = os.path.join(d, "pgo")
    os.makedirs(prof)
    gen = "-O3 -g0 -fprofile-generate"
    for cmd in recipe("clang-19", gen, "-fprofile-generate"):
        sh(cmd, d, env)
    sh(["sh", "-c", run_cmd + " > /dev/null"], d, dict(env, LLVM_PROFILE_FILE=os.path.join(prof, "%p.profraw")))
    raws = [os.path.join(prof, f) for f in os.listdir(prof) if f.endswith(".profraw")]
    merged = os.path.join(prof, "merged.profdata")
    sh(["llvm-profdata-19", "merge", "-o", merged] + raws, d, env)
    if os.path.exists(os.path.join(d, "build")):
        shutil.rmtree(os.path.join(d, "build"))
    else:
        sh(clean, d, env)
    for cmd in recipe("clang-19", f"-O3 -g0 -fprofile-instr-use={merged} -mllvm -no-pgo-warn-mismatch"):
        sh(cmd, d, env)
    return d


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", help="comma-separated seeds, one tuned binary per proposer and seed "
                    "(module docstring); default: --seed alone")
    ap.add_argument("--programs", default=",".join(PROGRAMS))
    ap.add_argument("--project", action="append", default=[],
                    help="a JSON file describing another project to measure (module docstring)")
    ap.add_argument("--proposers", default="offline,random")
    ap.add_argument("--no-pgo", action="store_true")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--wrapper", help="autopass-cc to use (default: the installed console script)")
    args = ap.parse_args()
    wrapper = args.wrapper or os.path.join(sysconfig.get_path("scripts"), "autopass-cc")
    work = tempfile.mkdtemp(prefix="autopass-speedup-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOPASS_", "OPENAI_"))}
    env["XDG_CONFIG_HOME"] = os.path.join(work, "config")
    programs = [p for p in args.programs.split(",") if p] + [add_project(p) for p in args.project]
    proposers = [p for p in args.proposers.split(",") if p]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else [args.seed]
    # (proposer, seed) of each tuned variant, named "offline" with one seed, "offline@1" with several
    tuned = {(f"{p}@{s}" if len(seeds) > 1 else p): (p, s) for p in proposers for s in seeds}
    variants = ["O3"] + list(tuned) + ([] if args.no_pgo else ["PGO"])
    results = {}
    for name in programs:
        dirs, infos = {}, {}
        print(f"[{name}] building O3", file=sys.stderr, flush=True)
        dirs["O3"] = build_o3(name, work, env)
        for v, (p, seed) in tuned.items():
            print(f"[{name}] tuning with the {p} proposer, budget {args.budget}, seed {seed}", file=sys.stderr,
                  flush=True)
            dirs[v], infos[v] = build_tuned(name, work, env, wrapper, p, args.budget, seed, variant=v)
            infos[v]["seed"] = seed
            print(f"[{name}]   {infos[v]}", file=sys.stderr, flush=True)
        if not args.no_pgo:
            print(f"[{name}] building PGO", file=sys.stderr, flush=True)
            dirs["PGO"] = build_pgo(name, work, env)
        run_cmd = PROGRAMS[name][3]
        times = {v: [] for v in variants}
        outputs = {}
        for v in variants:  # warm-up, and the reference outputs
            r = run_command(run_cmd, cwd=dirs[v], timeout_s=600)
            outputs[v] = (r.returncode, r.stdout)
        for rnd in range(args.rounds):
            order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
            for v in order:
                times[v].append(run_command(run_cmd, cwd=dirs[v], timeout_s=600).cpu_s)
        results[name] = {}
        for v in variants:
            if v == "O3":
                ratio, lo, hi = 1.0, 1.0, 1.0
            else:
                ratio, lo, hi = ratio_ci(times["O3"], times[v], seed=args.seed)
            results[name][v] = {"median_s": statistics.median(times[v]), "speedup": ratio, "ci": [lo, hi],
                                "same_output": outputs[v] == outputs["O3"], **infos.get(v, {})}
        if len(seeds) > 1 and len(proposers) > 1:
            a, b = proposers[:2]
            for seed in seeds:
                ratio, lo, hi = ratio_ci(times[f"{b}@{seed}"], times[f"{a}@{seed}"], seed=args.seed)  # median(b) / median(a)
                results[name][f"{b}@{seed}"][f"vs_{a}"] = {"ratio": ratio, "ci": [lo, hi]}
    print(f"\nspeedup over -O3 (median CPU time ratio, paired bootstrap 95% CI, {args.rounds} interleaved rounds; "
          f"tuning budget {args.budget} trials per proposer)")
    head = f"{'program':<18}{'O3 s':>8}" + "".join(f"{v:>24}" for v in variants[1:])
    print(head)
    for name in programs:
        row = f"{name:<18}{results[name]['O3']['median_s']:>8.3f}"
        for v in variants[1:]:
            r = results[name][v]
            mark = "" if r["same_output"] else " WRONG"
            row += f"{r['speedup']:>9.3f} ({r['ci'][0]:.3f}-{r['ci'][1]:.3f}){mark:>0}"
        print(row)
    print(f"{'geomean':<18}{'':>8}" + "".join(
        f"{geomean([results[n][v]['speedup'] for n in programs]):>24.3f}" for v in variants[1:]))
    if len(seeds) > 1:
        print(f"\ngeomean over programs, per seed (and over all {len(programs) * len(seeds)} program-seed pairs)")
        for p in proposers:
            per = [geomean([results[n][f"{p}@{s}"]["speedup"] for n in programs]) for s in seeds]
            every = geomean([results[n][f"{p}@{s}"]["speedup"] for n in programs for s in seeds])
            print(f"{p:<18}" + "".join(f"  seed {s}: {g:.3f}" for s, g in zip(seeds, per)) + f"   all: {every:.3f}")
        if len(proposers) > 1:
            a, b = proposers[:2]
            won = lost = tied = 0
            print(f"\nhead to head, per program and seed: median({b}) / median({a}), paired bootstrap 95% CI "
                  f"(above 1: {a} faster)")
            for n in programs:
                cells = []
                for s in seeds:
                    h = results[n][f"{b}@{s}"][f"vs_{a}"]
                    won += h["ci"][0] > 1
                    lost += h["ci"][1] < 1
                    tied += h["ci"][0] <= 1 <= h["ci"][1]
                    cells.append(f"{h['ratio']:.3f} ({h['ci'][0]:.3f}-{h['ci'][1]:.3f})")
                print(f"{n:<18}" + "  ".join(cells))
            print(f"{a} faster in {won}, {b} faster in {lost}, tied (CI contains 1) in {tied} of "
                  f"{won + lost + tied} program-seed pairs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
