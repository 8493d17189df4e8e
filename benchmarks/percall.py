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

Then the CPU time of a call (user + system, all processes: the client, the server and the children
it forks, clang), which is what a parallel build whose jobs fill every core pays for, wall time
hiding none of it: blocks of ``--block`` calls of one kind, the kinds rotated, ``--cpu-blocks``
times; per kind the median over blocks of CPU seconds per call.  The server's share is read from
``/proc/<pid>/stat`` (its own and its reaped children's times, in clock ticks: hence blocks), with
the sockets in a private AUTOPASS_SERVER_DIR so that the server is this benchmark's own.
Usage: python3 benchmarks/percall.py [--rounds 15] [--standalone] [--cpu-blocks 3] [--block 20]
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


def _stat(pid) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return None


def server_cpu(server_dir: str) -> float:
    """CPU seconds (user + system) of the compile servers with a pid file in ``server_dir``, of
    their live workers, and of the processes both have reaped (proc(5): utime, stime, cutime,
    cstime; a worker that ends moves its share into the server's cutime/cstime)."""
    import glob
    total = 0
    servers = set()
    for pid_file in glob.glob(os.path.join(server_dir, "*.sock.pid")):
        try:
            with open(pid_file) as f:
                servers.add(int(f.read()))
        except (OSError, ValueError):
            continue
    for pid in servers:
        fields = _stat(pid)
        if fields:
            total += sum(int(x) for x in fields[11:15])
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(name)
            if fields and int(fields[1]) in servers:  # (fields[1]: the parent's pid)
                total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (getrusage RUSAGE_CHILDREN)."""
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--standalone", action="store_true", help="AUTOPASS_SERVER=0: no compile server")
    ap.add_argument("--cpu-blocks", type=int, default=3, help="blocks per kind for the CPU table (0: none)")
    ap.add_argument("--block", type=int, default=20, help="calls per block for the CPU table")
    args = ap.parse_args()
    wrapper = os.path.join(sysconfig.get_path("scripts"), "autopass-cc")
    work = tempfile.mkdtemp(prefix="autopass-percall-")
    src = os.path.join(work, "src")
    shutil.copytree(os.path.join(ROOT, "tests", "programs", "interp-cmake", "src"), src)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPASS_")}
    env["AUTOPASS_CACHE_DIR"] = os.path.join(work, "cache")
    server_dir = os.path.join(work, "sockets")
    os.mkdir(server_dir, 0o700)
    env["AUTOPASS_SERVER_DIR"] = server_dir
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
    if args.cpu_blocks > 0:
        cpu_table(args, wrapper, flags, work, env, server_dir)
    subprocess.run([wrapper, "server", "stop"], cwd=work, env=env, capture_output=True)
    shutil.rmtree(work, ignore_errors=True)


def cpu_table(args, wrapper, flags, work, env, server_dir) -> None:
    """The CPU part of the module docstring: prints ms of CPU per call per kind."""
    kinds = ("bare", "miss", "hit")
    per_call: dict[str, list[float]] = {k: [] for k in kinds}
    for b in range(args.cpu_blocks):
        for kind in kinds[b % 3:] + kinds[:b % 3]:
            s0, c0 = server_cpu(server_dir), children_cpu()
            for i in range(args.block):
                if kind == "bare":
                    cmd = ["clang-19"] + flags
                elif kind == "miss":
                    cmd = [wrapper, f"-DPERCALL_CPU={b}_{i}_{time.time_ns()}"] + flags
                else:
                    cmd = [wrapper] + flags
                timed(cmd, work, env)
            time.sleep(0.5)  # the last call's background store ends and its process is reaped
            per_call[kind].append((server_cpu(server_dir) - s0 + children_cpu() - c0) / args.block)
    med = {k: 1000 * statistics.median(v) for k, v in per_call.items()}
    print(f"\nCPU per call (user + system of every process involved), {args.cpu_blocks} blocks of "
          f"{args.block} calls per kind, median ms:")
    print(f"bare {med['bare']:.1f}   miss {med['miss']:.1f} (+{med['miss'] - med['bare']:.1f}, "
          f"x{med['miss'] / med['bare']:.3f})   hit {med['hit']:.1f} ({med['bare'] / med['hit']:.1f}x less than bare)")


if __name__ == "__main__":
    main()
