"""``autopass-cc demo``: the user's story of ARCHITECTURE.md on a bundled example, end to end.

1. copy ``examples/<name>`` to a work directory; ``autopass-cc init --run <RUN file>``;
2. build 1 with ``make CC=autopass-cc`` (every TU a cache miss: the user's own flags); keep that
   binary as the baseline;
3. ``autopass-cc tune`` (a session with the given budget);
4. ``make clean && make CC=autopass-cc`` -- build 2 takes the tuned pipelines from the cache;
5. run the baseline and the tuned binary side by side (interleaved rounds, bootstrap CI of the
   ratio of medians), check they print the same, print the measured speedup and the report path.

The demo uses its own cache directory inside the work directory, so it never touches the user's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from ..errors import AutopassError
from .report import ci_text

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def _sh(cmd: list[str], cwd: str, env: dict, echo) -> None:
    echo("$ " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise AutopassError(f"demo step failed: {' '.join(cmd)} (exit {r.returncode})")


def run_demo(*, workdir: str | None, budget: int, proposer: str, example: str, wrapper: str,
             local_llm: bool = False, echo=print) -> dict:
    """Run the demo; returns ``{"speedup", "ci", "report", "workdir"}``.  Raises AutopassError when a
    step fails (the message names the step)."""
    src = os.path.join(EXAMPLES, example)
    if not os.path.isdir(src):
        raise AutopassError(f"no example {example!r} in {EXAMPLES}")
    workdir = os.path.abspath(workdir or tempfile.mkdtemp(prefix="autopass-demo-"))
    proj = os.path.join(workdir, example)
    if os.path.exists(proj):
        shutil.rmtree(proj)
    shutil.copytree(src, proj)
    with open(os.path.join(proj, "RUN"), encoding="utf-8") as f:
        run_cmd = f.read().strip()
    with open(os.path.join(proj, "BINARY"), encoding="utf-8") as f:
        binary = f.read().strip()
    env = dict(os.environ, AUTOPASS_CACHE_DIR=os.path.join(workdir, "cache"))
    env.pop("AUTOPASS_PROJECT", None)
    server = None
    try:
        if local_llm:
            from .localmodel import start_local_server
            base_url, server = start_local_server(threads=1)
            env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=env.get("OPENAI_API_KEY", "local"))
            proposer = "llm"
            echo(f"local model server at {base_url}")
        echo(f"demo in {proj}")
        _sh([wrapper, "init", "--run", run_cmd, "--target", binary, "--on-miss", "off", "--budget", str(budget)],
            proj, env, echo)
        _sh(["make", f"CC={wrapper}", "-j2"], proj, env, echo)
        shutil.copy2(os.path.join(proj, binary), os.path.join(workdir, "baseline-" + os.path.basename(binary)))
        echo(f"$ {wrapper} tune --budget {budget} --proposer {proposer}")
        r = subprocess.run([wrapper, "tune", "--budget", str(budget), "--proposer", proposer], cwd=proj, env=env,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AutopassError("demo step failed: autopass-cc tune")
        _sh(["make", "clean"], proj, env, echo)
        _sh(["make", f"CC={wrapper}", "-j2"], proj, env, echo)
        stats = subprocess.run([wrapper, "stats"], cwd=proj, env=env, capture_output=True, text=True).stdout
        echo(stats.rstrip())
        result = measure_side_by_side(proj, run_cmd, os.path.join(proj, binary),
                                      os.path.join(workdir, "baseline-" + os.path.basename(binary)))
    finally:
        if server is not None:
            from .localmodel import stop
            stop(server)
    latest = os.path.join(proj, ".autopass", "sessions", "latest")
    report = os.path.realpath(os.path.join(latest, "summary.txt"))
    echo(f"same output as the baseline: {'yes' if result['same_output'] else 'NO'}")
    echo(f"measured speedup of the rebuilt binary over the -O3 baseline: {result['ratio']:.3f}x "
         f"(95% CI {ci_text(result['ci'][0], result['ci'][1])}, {result['rounds']} interleaved rounds, CPU time)")
    if result["identical"]:
        echo("the rebuilt binary is byte-identical to the -O3 build (the session kept your flags): that ratio "
             "is this machine's noise")
    echo(f"report: {report} (and session.json, speedup.png beside it)")
    return {**result, "report": report, "workdir": workdir}


def measure_side_by_side(cwd: str, run_cmd: str, tuned: str, baseline: str, rounds: int = 15) -> dict:
    """Interleave runs of ``run_cmd`` with ``baseline`` and with ``tuned`` at the target path.
    Returns ``{"ratio", "ci", "rounds", "same_output", "identical"}``; ratio > 1 means the tuned one
    is faster; ``identical``: the two files have the same bytes (the ratio is then noise)."""
    from .measure import compare, run_command
    keep = tuned + ".autopass-keep"
    shutil.copy2(tuned, keep)
    outputs = {}

    def runner(path, label):
        def once():
            shutil.copy2(path, tuned + ".tmp")
            os.replace(tuned + ".tmp", tuned)
            r = run_command(run_cmd, cwd=cwd, timeout_s=300)
            outputs.setdefault(label, (r.returncode, r.stdout))
            return r.cpu_s
        return once
    try:
        c = compare(runner(baseline, "base"), runner(keep, "tuned"), min_rounds=rounds, max_rounds=rounds, warmup=1)
    finally:
        os.replace(keep, tuned)
    from .program import file_digest
    return {"ratio": c.ratio, "ci": (c.ci_low, c.ci_high), "rounds": c.rounds,
            "same_output": outputs.get("base") == outputs.get("tuned"),
            "identical": file_digest(baseline) == file_digest(tuned)}
