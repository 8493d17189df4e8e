"""Tuning inside the build (``on_miss = "link"``): when the wrapper intercepts the link of the
configured target and some of its TUs have no cache entry, run a session right there (progress on
stderr), then recompile the TUs that got a tuned pipeline (through the wrapper, so the cache hit
writes the user's object and dependency file), refresh the static archives holding them, and let
the link go on.  A held lock, a failing run command or an interrupted session never fails the link:
each is one line on stderr and the link proceeds (ARCHITECTURE.md decision 3).
"""

from __future__ import annotations

import os
import subprocess
import sys

from .. import buildlog


def _untuned(project: str, target: str) -> bool:
    """True when a TU linked into ``target`` was compiled without a cache entry ("miss")."""
    compiles, links = buildlog.latest(buildlog.read(project))
    link = links.get(target)
    if link is None:
        return False
    by_name = {}
    for rec in compiles.values():
        by_name.setdefault(os.path.basename(rec["output"]), rec)
    recs = [compiles[i] for i in link["inputs"] if i in compiles]
    if any(i.endswith(".a") for i in link["inputs"]):
        from .program import _archive_members
        for arch in (i for i in link["inputs"] if i.endswith(".a") and os.path.isfile(i)):
            recs += [by_name[m] for m in _archive_members(arch) if m in by_name]
    return any(r.get("lookup") in ("miss", "refused", None) for r in recs)


def tune_at_link(project: str, settings: dict, warn) -> None:
    """Run a session if the target has untuned TUs, then rebuild the tuned objects.  Never raises
    for a session problem: ``warn`` gets one line and the caller links as asked."""
    from ..errors import AutopassError
    from .session import Session, SessionLocked
    target = os.path.abspath(os.path.join(project, settings["target"]))
    if not _untuned(project, target):
        return
    warn(f"tuning {os.path.relpath(target, project)} before linking it (on_miss = \"link\"; "
         "AUTOPASS_TUNE=0 skips this)")
    try:
        session = Session(project, settings, progress=True, note=warn)
        report = session.run()
    except SessionLocked as e:
        warn(f"{e}; linking without tuning")
        return
    except KeyboardInterrupt:
        warn("tuning interrupted; linking with the objects as built")
        return
    except AutopassError as e:
        warn(f"tuning skipped: {e}")
        return
    winners = report.get("winner") or {}
    warn(f"session done: speedup {report.get('speedup', 1.0):.3f}x; report {report['files']['summary']}")
    if not winners:
        return
    archives: dict[str, list[str]] = {}
    for t in session.program.tus:
        if t.tu_id not in winners:
            continue
        cmd = [sys.executable, "-m", "autopass_cc.wrapper", t.compiler] + list(t.args)
        r = subprocess.run(cmd, cwd=t.cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           env=dict(os.environ, AUTOPASS_TUNE="0"))
        if r.returncode != 0:
            warn(f"could not rebuild {t.rel} with its tuned pipeline; keeping the object as built")
            continue
        if t.archive:
            archives.setdefault(t.archive, []).append(t.output)
    from ..toolchain import llvm_tool
    for arch, members in archives.items():
        subprocess.run([llvm_tool("llvm-ar"), "r", arch] + members, capture_output=True)
