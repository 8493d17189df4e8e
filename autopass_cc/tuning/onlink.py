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


def _untuned(project: str, output: str) -> bool:
    """True when a TU linked into ``output`` (the link's output path) or into a shared library of the
    build tree it links was compiled without a cache entry ("miss") and no session has examined it
    since: the compile record keeps saying "miss" until the TU is compiled again, so a make that
    only relinks (seen on QuickJS: the session rewrote quickjs.o after qjsc and libquickjs.a were
    built from it, the next make relinked them) must not start a session over."""
    from ..errors import AutopassError
    from .program import Program
    try:
        prog = Program(project, output, os.path.join(project, ".autopass", "unused-scratch"), find_moved=False)
    except AutopassError:
        return False
    lookups = {t.tu_id: prog.compiles.get(t.output, {}).get("lookup") for t in prog.tus}
    if any(v == "refused" for v in lookups.values()):
        return True
    missed = [tu_id for tu_id, v in lookups.items() if v in ("miss", None)]
    if not missed:
        return False
    from ..store import HotStore
    try:
        store = HotStore()
    except Exception:
        return True
    try:
        return any(not store.has_tu(tu_id) for tu_id in missed)
    except Exception:
        return True
    finally:
        store.close()


def tune_at_link(project: str, settings: dict, warn, output: str | None = None) -> None:
    """Run a session if the target (linked as ``output``: the target's path, or libtool's
    ``.libs/`` program behind it; default the target) has untuned TUs, then rebuild the tuned
    objects of the executable.  Never raises for a session problem: ``warn`` gets one line and the
    caller links as asked."""
    from ..errors import AutopassError
    from .session import Session, SessionLocked
    from .verify import BaselineFailed
    target = os.path.abspath(os.path.join(project, settings["target"]))
    if not _untuned(project, output or target):
        return
    if output and output != target and not os.path.exists(target):
        # libtool deletes the old script before it links and writes the new one after.
        warn(f"not tuning at this link: libtool writes {os.path.relpath(target, project)} (the wrapper script "
             "the run command starts) only after it; run `autopass-cc tune` once the build is done")
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
    except BaselineFailed as e:
        # Seen on libjpeg-turbo (CMake): the run command also starts djpeg, which this build links
        # after cjpeg, the target.  The command may be right and the build just not done yet.
        warn(f"tuning skipped at this link: {e}; if the run command needs something this build makes "
             f"later (another program, data), run `autopass-cc tune` once the build is done")
        return
    except AutopassError as e:
        warn(f"tuning skipped: {e}")
        return
    winners = report.get("winner") or {}
    if winners:
        ci = report.get("speedup_ci") or [None, None]
        from .report import ci_text
        span = f" (CI {ci_text(ci[0], ci[1])})" if None not in ci else ""
        warn(f"session done: speedup {report.get('speedup', 1.0):.3f}x{span}; report {report['files']['summary']}")
    else:
        warn(f"session done: no significant speedup, your flags are kept; report {report['files']['summary']}")
    if not winners:
        return
    in_libraries = sorted({os.path.relpath(img.path, project) for t in session.program.tus if t.tu_id in winners
                           and t.image != 0 for img in session.program.images if img.index == t.image})
    if in_libraries:
        # Seen on expat (CMake): the session reported 1.034x, the build right after it measured
        # 1.010x, a clean rebuild 1.040x -- libexpat.so had been linked before the session.
        warn(f"tuned TUs of {', '.join(in_libraries)} take effect when that library is rebuilt (it was "
             "linked before this session): rebuild from clean to get the measured speedup")
    archives: dict[str, list[str]] = {}
    for t in session.program.tus:
        # A shared library is linked already: its TUs get their tuned pipelines when next compiled.
        if t.tu_id not in winners or t.image != 0:
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
    from .program import is_thin_archive
    for arch, members in archives.items():
        if is_thin_archive(arch):
            continue  # it names the objects just rewritten in place: nothing to copy into it
        subprocess.run([llvm_tool("llvm-ar"), "r", arch] + members, capture_output=True)
