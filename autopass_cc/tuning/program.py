"""The program a session tunes, rebuilt from the build log in a scratch directory.

* :class:`Program` reads the newest link of the configured target and the compile records of its
  objects (direct inputs, and members of static archives on the link line, matched by member
  name as ``ar`` stores it).  It compiles a TU with a Pipeline into
  ``<scratch>/obj/<pipeline digest>/<tu #>/<object name>`` (cached per (TU, pipeline)), and relinks
  a configuration (TU id -> Pipeline) into ``<scratch>/bin/<n>/<target name>`` by re-running the
  recorded link command with the object and archive paths swapped and ``-o`` redirected.  The
  user's objects, archives and dependency files are never written.
* :class:`BinarySwap` lets the user's own run command exercise a scratch binary: the target path is
  hard-linked to a backup first, candidates are put in place with an atomic rename, and the
  original is renamed back at the end (same inode and mtime, so make sees nothing new).  A journal
  file records the swap, so a session killed with SIGKILL is repaired by the next one
  (:func:`recover`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from .. import buildlog
from ..config import state_dir
from ..emit import compile_tu, retarget
from ..errors import BuildLogError, SessionError
from ..invocation import Invocation, classify_record, expand_response_files
from ..pipeline import Pipeline


@dataclass
class TU:
    """One translation unit of the target: ``tu_id`` (cache-key TU identity), ``source`` and
    ``output`` (absolute paths), ``rel`` (source relative to the project), the recorded ``cwd``,
    ``compiler`` and ``args``, the parsed Invocation, and ``archive`` (absolute path of the static
    archive it is a member of, or None when the object is a direct link input)."""
    index: int
    tu_id: str
    source: str
    rel: str
    output: str
    cwd: str
    compiler: str
    args: list
    inv: Invocation
    archive: str | None = None


class BuildFailed(Exception):
    """A compile or link in the scratch directory failed; ``str()`` is its first error line."""


def _first_error(stderr: bytes) -> str:
    lines = [l for l in stderr.decode("utf-8", "replace").splitlines() if l.strip()]
    for l in lines:
        if "error" in l.lower():
            return l.strip()[:300]
    return (lines[0].strip()[:300] if lines else "no diagnostic")


def _archive_members(archive: str) -> list[str]:
    from ..toolchain import llvm_tool
    try:
        ar = llvm_tool("llvm-ar")
    except Exception:
        ar = shutil.which("ar") or "ar"
    out = subprocess.run([ar, "t", archive], capture_output=True, text=True)
    return out.stdout.split() if out.returncode == 0 else []


class Program:
    """The configured target as the build log knows it.  Raises BuildLogError (one line, with the
    fix) when the log has no link of the target or no compile record of any of its objects."""

    def __init__(self, project: str, target: str, scratch: str):
        self.project = project
        self.target = os.path.abspath(os.path.join(project, target))
        self.scratch = scratch
        compiles, links = buildlog.latest(buildlog.read(project))
        self.link = links.get(self.target)
        if self.link is None:
            raise BuildLogError(f"the build log has no link of {target}; build it once through the wrapper "
                                f"(e.g. make clean && CC=autopass-cc make) in {project}")
        self.tus: list[TU] = []
        by_name: dict[str, list[dict]] = {}
        for rec in compiles.values():
            by_name.setdefault(os.path.basename(rec["output"]), []).append(rec)
        for inp in self.link["inputs"]:
            if inp in compiles:
                self._add(compiles[inp], None)
            elif inp.endswith(".a") and os.path.isfile(inp):
                for member in _archive_members(inp):
                    cands = by_name.get(member, [])
                    # Prefer the object built beside the archive's own build tree, then the newest.
                    cands = sorted(cands, key=lambda r: (os.path.commonpath([r["output"], inp]).count(os.sep), r.get("time", 0)))
                    if cands:
                        self._add(cands[-1], inp)
        if not self.tus:
            raise BuildLogError(f"none of the objects linked into {target} was compiled through autopass-cc; "
                                "rebuild from clean with CC=autopass-cc")
        self._objects: dict[tuple, str] = {}
        self._links = 0

    def _add(self, rec: dict, archive: str | None) -> None:
        if any(t.output == rec["output"] for t in self.tus):
            return
        inv = classify_record(rec)
        if not isinstance(inv, Invocation):
            return
        rel = os.path.relpath(rec["source"], self.project) if rec["source"].startswith(self.project + os.sep) else rec["source"]
        self.tus.append(TU(len(self.tus), rec["tu_id"], rec["source"], rel, rec["output"], rec["cwd"],
                           rec["compiler"], rec["args"], inv, archive))

    def tu(self, tu_id: str) -> TU:
        return next(t for t in self.tus if t.tu_id == tu_id)

    # -- building ------------------------------------------------------------------------------
    def object_for(self, tu: TU, pipeline: Pipeline, extra: list | None = None, subdir: str = "obj") -> str:
        """Compile ``tu`` with ``pipeline`` into the scratch tree (cached) and return the object's
        path.  Raises BuildFailed with clang's first error line."""
        key = (tu.tu_id, pipeline.digest(), subdir)
        if key in self._objects and not extra:
            return self._objects[key]
        out = os.path.join(self.scratch, subdir, pipeline.digest(), str(tu.index), os.path.basename(tu.output))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        res = compile_tu(tu.compiler, tu.inv, retarget(tu.args, out), pipeline, tu.cwd, output=out, extra=extra)
        if res.returncode != 0:
            raise BuildFailed(f"compile error in {tu.rel}: {_first_error(res.stderr)}")
        if not extra:
            self._objects[key] = out
        return out

    def link_config(self, config: dict, subdir: str = "bin") -> str:
        """Relink the target with TU id -> Pipeline ``config`` (missing TUs: baseline); returns the
        scratch binary path.  Raises BuildFailed."""
        self._links += 1
        workdir = os.path.join(self.scratch, subdir, str(self._links))
        os.makedirs(workdir, exist_ok=True)
        objs = {t.output: self.object_for(t, config.get(t.tu_id, Pipeline())) for t in self.tus}
        archives: dict[str, str] = {}
        for t in self.tus:
            if t.archive and t.archive not in archives:
                copy = os.path.join(workdir, "lib", os.path.basename(t.archive))
                os.makedirs(os.path.dirname(copy), exist_ok=True)
                shutil.copy2(t.archive, copy)
                archives[t.archive] = copy
        from ..toolchain import llvm_tool
        for arch, copy in archives.items():
            members = [objs[t.output] for t in self.tus if t.archive == arch]
            r = subprocess.run([llvm_tool("llvm-ar"), "r", copy] + members, capture_output=True)
            if r.returncode != 0:
                raise BuildFailed(f"archive update failed: {_first_error(r.stderr)}")
        out = os.path.join(workdir, os.path.basename(self.target))
        args = self._link_args(objs, archives, out)
        r = subprocess.run([self.link["compiler"]] + args, cwd=self.link["cwd"], capture_output=True,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise BuildFailed(f"link error: {_first_error(r.stderr)}")
        return out

    def _link_args(self, objs: dict, archives: dict, out: str) -> list[str]:
        cwd = self.link["cwd"]
        # Objects may sit in response files (@objects.rsp): relink from the expanded list, or the
        # user's objects would be linked and every candidate would equal the baseline.
        src = expand_response_files(self.link["args"], cwd) or self.link["args"]
        args, i = [], 0
        while i < len(src):
            a = src[i]
            if a == "-o" and i + 1 < len(src):
                args += ["-o", out]
                i += 2
                continue
            if a.startswith("-o") and len(a) > 2:
                args.append("-o" + out)
                i += 1
                continue
            full = os.path.abspath(os.path.join(cwd, a)) if not a.startswith("-") else None
            if full in objs:
                args.append(objs[full])
            elif full in archives:
                args.append(archives[full])
            else:
                args.append(a)
            i += 1
        if "-o" not in args and not any(x.startswith("-o") for x in args):
            args += ["-o", out]
        return args


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (hex), to recognise byte-identical binaries."""
    from ..toolchain import file_sha256
    return file_sha256(path)


def _journal(project: str) -> str:
    return os.path.join(state_dir(project), "swap.json")


def recover(project: str) -> str | None:
    """Undo a swap left by a session that died (SIGKILL, power loss).  Returns a one-line note of
    what was restored, or None when there was nothing to do."""
    path = _journal(project)
    try:
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
    except (OSError, ValueError):
        return None
    target, backup = j["target"], j.get("backup")
    if j.get("existed") and backup and os.path.exists(backup):
        os.replace(backup, target)
        note = f"restored {target} left swapped by an interrupted session"
    elif not j.get("existed"):
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass
        note = f"removed the scratch binary an interrupted session left at {target}"
    else:
        note = None
    os.unlink(path)
    return note


class BinarySwap:
    """Context manager putting scratch binaries at the target path (see module docstring)."""

    def __init__(self, project: str, target: str):
        self.project, self.target = project, target
        self.backup = os.path.join(state_dir(project), "backup", os.path.basename(target))
        self.existed = os.path.lexists(target)
        self.current: str | None = None

    def __enter__(self) -> "BinarySwap":
        os.makedirs(os.path.dirname(self.backup), exist_ok=True)
        if self.existed:
            if os.path.lexists(self.backup):
                os.unlink(self.backup)
            try:
                os.link(self.target, self.backup)
            except OSError:
                shutil.copy2(self.target, self.backup)
        tmp = _journal(self.project) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"target": self.target, "backup": self.backup, "existed": self.existed, "pid": os.getpid()}, f)
        os.replace(tmp, _journal(self.project))
        return self

    def install(self, binary: str) -> None:
        """Put ``binary`` at the target path (atomic rename of a hard link or copy)."""
        if self.current == binary:
            return
        tmp = self.target + ".autopass-tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        try:
            os.link(binary, tmp)
        except OSError:
            shutil.copy2(binary, tmp)
        os.replace(tmp, self.target)
        self.current = binary

    def __exit__(self, *exc) -> None:
        self.current = None
        recover(self.project)
        if self.existed and not os.path.lexists(self.target):
            raise SessionError(f"could not restore {self.target}; the original is at {self.backup}")
