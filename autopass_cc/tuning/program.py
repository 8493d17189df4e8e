"""The program a session tunes, rebuilt from the build log in a scratch directory.

* :class:`Program` reads the newest link of the configured target (a libtool wrapper script
  stands for the executable it runs; so does a copy of a linked file) and the compile records of
  its objects: direct inputs (also objects the build renamed after compiling them, matched by
  content), members of static archives on the link line (matched by member name as ``ar`` stores it, and by
  content when several objects share the name), archives and shared libraries named by ``-lNAME``
  in a ``-L`` directory, and the objects of every shared library of the build tree it links (an
  *image*: CMake's ``libfoo.so.1.2``, libtool's ``.libs/libfoo.so.0.0.0``).  It compiles a TU with
  a Pipeline into ``<scratch>/obj/<pipeline digest>/<tu #>/<object name>`` (cached per (TU,
  pipeline)), and relinks a configuration (TU id -> Pipeline) into ``<scratch>/bin/<n>/`` by
  re-running the recorded link commands with the object and archive paths swapped and ``-o``
  redirected: changed libraries first, then the executable.  The user's objects, archives and
  dependency files are never written.
* :class:`BinarySwap` lets the user's own run command exercise a scratch build: each user file
  (the executable, and the libraries it loads) is hard-linked to a backup first, candidates are
  put in place with an atomic rename, and the originals are renamed back at the end (same inode
  and mtime, so make sees nothing new).  A journal file records the swap, so a session killed with
  SIGKILL is repaired by the next one (:func:`recover`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
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
    ``compiler`` and ``args``, the parsed Invocation, ``archive`` (absolute path of the static
    archive it is a member of, or None when the object is a direct link input) and ``image`` (index
    into :attr:`Program.images` of the linked file it ends up in: 0 for the executable)."""
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
    image: int = 0


@dataclass
class Image:
    """A file the linker wrote that a run of the target loads: the executable itself (index 0) or a
    shared library of the build tree it links, directly or through another such library.  ``path``
    is the user's file with symlinks resolved (``libfoo.so`` -> ``libfoo.so.1.2.3``): the swap puts
    candidates there.  ``link`` is its link record; ``members`` the outputs of the TUs it links."""
    index: int
    path: str
    link: dict
    members: list


@dataclass
class Linked:
    """One relinked configuration: ``files`` maps each user file (absolute path; the executable
    first) to the scratch file that stands in for it during a run."""
    files: dict

    @property
    def binary(self) -> str:
        """The scratch executable."""
        return next(iter(self.files.values()))

    def digest(self) -> str:
        """SHA-256 (hex) of the executable alone, or of the list of every file's SHA-256 when shared
        libraries are relinked too: equal digests mean byte-identical programs."""
        from ..toolchain import file_sha256
        if len(self.files) == 1:
            return file_sha256(self.binary)
        import hashlib
        return hashlib.sha256(" ".join(file_sha256(f) for f in self.files.values()).encode()).hexdigest()


#: clang's option for instrumented PGO, given to the compiles of instrumented TUs and to every link:
#: IR-level instrumentation, which the Clang User's Manual ("Profiling with Instrumentation")
#: recommends "for best performance with PGO" (the front-end ``-fprofile-instr-generate`` is meant
#: for coverage).  Measured here on the sqlite3 shell: 1.20-1.24x vs -O3 with it, 1.14-1.15x with
#: the front-end one (tuning/pgo.py).
INSTRUMENT = "-fprofile-generate"


#: A session's compile of a TU with a candidate pipeline (or instrumented) is stopped after this
#: many times the seconds its compile with the user's flags took, and at least COMPILE_LIMIT_MIN_S:
#: such a pipeline would slow the user's own builds as much, and one trial must not hold a session
#: (knobs such as a large inline-threshold can blow a big TU's compile up: with inline-threshold=1545
#: the evidence compile of sqlite3.c, optimization records on, ran for more than 12 minutes).
COMPILE_LIMIT_FACTOR = 5.0
COMPILE_LIMIT_MIN_S = 60.0


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


def is_thin_archive(path: str) -> bool:
    """True for a thin archive (``ar T``; Meson makes its uninstalled static libraries so): it holds
    the paths of its members, not their bytes, and ``ar t`` prints those paths (as reachable from
    the current directory) rather than member names.  GNU ar's manual, "thin archive"."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"!<thin>\n"
    except OSError:
        return False


def _member_digest(archive: str, member: str) -> str | None:
    """SHA-256 of the first archive member named ``member`` (``ar p``), or None."""
    from ..toolchain import llvm_tool
    import hashlib
    try:
        out = subprocess.run([llvm_tool("llvm-ar"), "p", archive, member], capture_output=True)
    except Exception:
        return None
    return hashlib.sha256(out.stdout).hexdigest() if out.returncode == 0 else None


def libtool_programs(path: str) -> list[str]:
    """The executables a libtool wrapper script at ``path`` may run, most likely first, or [] when
    ``path`` is not one.  Libtool writes ``prog`` as a shell script ("temporary wrapper script for
    .libs/prog") that sets LD_LIBRARY_PATH and runs ``.libs/prog``, or ``.libs/lt-prog`` on
    platforms where it relinks with the build tree's rpath (``program=lt-'prog'`` in the script;
    GNU Libtool manual, "Linking executables")."""
    try:
        with open(path, "rb") as f:
            text = f.read(1 << 16)
    except OSError:
        return []
    m = re.search(rb"temporary wrapper script for (\S+)", text[:4096])
    if not text.startswith(b"#!") or not m:
        return []
    rel = m.group(1).decode("utf-8", "surrogateescape")
    objdir, name = os.path.split(rel)
    base = os.path.dirname(path)
    out = []
    if re.search(rb"program=lt-'", text):
        out.append(os.path.join(base, objdir, "lt-" + name))
    out.append(os.path.join(base, rel))
    return out


def _is_shared(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(".so") or ".so." in name


def _library_args(link: dict) -> list[tuple[int, str]]:
    """``(index, path)`` for each ``-lNAME`` of a link record (index into its arguments with response
    files expanded) that names a library in one of its ``-L`` directories, found as the linker
    does: per directory in order, ``libNAME.so`` before ``libNAME.a`` unless the link is ``-static`` (``-l:FILE`` names the file exactly).  System
    directories the linker searches by itself are not looked at: nothing there is in the log."""
    cwd = link["cwd"]
    args = expand_response_files(link["args"], cwd) or link["args"]
    dirs, wanted, static = [], [], "-static" in args
    i = 0
    while i < len(args):
        a = args[i]
        val = None
        if a in ("-L", "-l") and i + 1 < len(args):
            val = args[i + 1]
        elif a.startswith(("-L", "-l")) and len(a) > 2:
            val = a[2:]
        if val is not None:
            (dirs.append(os.path.join(cwd, val)) if a.startswith("-L") else wanted.append((i, val)))
            i += 2 if a in ("-L", "-l") else 1
            continue
        i += 1
    out = []
    for i, name in wanted:
        files = [name[1:]] if name.startswith(":") else (["lib" + name + ".a"] if static else
                                                          ["lib" + name + ".so", "lib" + name + ".a"])
        for d in dirs:
            hit = next((os.path.abspath(os.path.join(d, f)) for f in files if os.path.isfile(os.path.join(d, f))), None)
            if hit:
                out.append((i, hit))
                break
    return out


def _link_of_copy(path: str, links: dict) -> dict | None:
    """The newest link record whose output file is byte-identical to ``path`` (same size, then
    SHA-256), or None."""
    from ..toolchain import file_sha256
    try:
        size, want = os.path.getsize(path), None
        for out, rec in sorted(links.items(), key=lambda kv: -kv[1].get("time", 0)):
            if out and out != path and os.path.isfile(out) and os.path.getsize(out) == size:
                want = want or file_sha256(path)
                if file_sha256(out) == want:
                    return rec
    except OSError:
        return None
    return None


class Program:
    """The configured target as the build log knows it: the executable, the shared libraries of the
    build tree it links (each relinked too, so TUs in a library can be tuned), and their TUs.  A
    libtool wrapper script as target stands for the executable it runs, a copy of a linked file
    for that link.  ``find_moved=False`` skips the compiles that identify renamed objects (a
    cheap look at which TUs a target has).  Raises BuildLogError (one line, with the fix) when the
    log has no link of the target or no compile record of any of its objects."""

    def __init__(self, project: str, target: str, scratch: str, find_moved: bool = True):
        self._baseline_s: dict[str, float] = {}  # TU id -> seconds its compile with the user's flags took
        self.project = project
        self.find_moved = find_moved
        self._aliases: dict[str, str] = {}   # a link input that is a TU's object moved or copied -> its output
        self._thin: dict[str, list[str]] = {}  # a thin archive linked -> its members' paths, in order
        self.target = os.path.abspath(os.path.join(project, target))
        self.scratch = scratch
        compiles, links = buildlog.latest(buildlog.read(project))
        self.compiles = compiles      # the build log's newest compile record per output path
        self.link = links.get(self.target) or links.get(os.path.realpath(self.target))
        if self.link is None:
            behind = libtool_programs(self.target)
            for real in behind:
                self.link = links.get(real)
                if self.link is not None:
                    self.target = real
                    break
            else:
                if behind:
                    raise BuildLogError(f"the build log has no link of the program libtool's wrapper script {target} "
                                        f"runs; build it once through the wrapper (make clean && make CC=autopass-cc) "
                                        f"in {project}")
        if self.link is None and os.path.isfile(self.target):
            # Copied after its link (zstd's Makefile links obj/conf_<hash>/zstd, then cp's it to
            # programs/zstd; 'install' rules do the same): the link whose output has the same bytes.
            # The swap still happens at the target: that is what the run command executes.
            self.link = _link_of_copy(self.target, links)
        if self.link is None and compiles and not links:
            if os.path.isfile(os.path.join(project, "CMakeLists.txt")):
                raise BuildLogError(f"the build log has compiles but no link: links did not go through autopass-cc "
                                    f"(CMake's compiler launcher covers compiles only; add -DCMAKE_C_LINKER_LAUNCHER="
                                    f"autopass-cc and -DCMAKE_CXX_LINKER_LAUNCHER=autopass-cc, CMake >= 3.21, or use "
                                    f"shims/autopass.cmake), then relink {target}")
            # Seen on QuickJS with CONFIG_LTO=y: every -flto compile and link passes through.
            raise BuildLogError(f"the build log has compiles but no link of {target}: its link did not go through "
                                f"autopass-cc as a link (the linker set apart from CC, or an -flto build, whose "
                                f"compiles and links pass through untouched: TUs are tuned one at a time, "
                                f"without LTO); build it with CC=autopass-cc and without -flto, then relink")
        if self.link is None:
            raise BuildLogError(f"the build log has no link of {target}; build it once through the wrapper "
                                f"(e.g. make clean && make CC=autopass-cc) in {project}")
        self.tus: list[TU] = []
        self._objects: dict[tuple, str] = {}
        self.images = [Image(0, self.target, self.link, [])]
        self._by_name: dict[str, list[dict]] = {}
        self._by_stem: dict[str, list[dict]] | None = None
        for rec in compiles.values():
            self._by_name.setdefault(os.path.basename(rec["output"]), []).append(rec)
        real_links: dict = {}

        def shared_links() -> dict:
            if not real_links:
                real_links.update({os.path.realpath(k): v for k, v in links.items() if k and _is_shared(k)})
            return real_links
        for img in self.images:          # grows while it is walked: libraries of libraries
            for inp in list(img.link["inputs"]) + [path for _, path in _library_args(img.link)]:
                if inp in compiles:
                    self._add(compiles[inp], None, img)
                elif inp.endswith(".a") and os.path.isfile(inp):
                    members = _archive_members(inp)
                    if is_thin_archive(inp):
                        # A thin archive names its members' files: the record of that output.
                        self._thin[inp] = [os.path.abspath(m) for m in members]
                    for member in self._thin.get(inp, members):
                        rec = compiles.get(member) if inp in self._thin else self._member_record(inp, member)
                        if rec:
                            self._add(rec, inp, img)
                elif _is_shared(inp) and os.path.exists(inp):
                    real = os.path.realpath(inp)
                    rec = links.get(real) or links.get(inp) or shared_links().get(real)
                    if rec and all(i.path != real for i in self.images):
                        self.images.append(Image(len(self.images), real, rec, []))
                elif inp.endswith((".o", ".lo", ".obj")) and os.path.isfile(inp):
                    rec = self._moved_record(inp, "-shared" in img.link["args"])
                    if rec:
                        self._aliases[inp] = rec["output"]
                        self._add(rec, None, img)
        # A library none of whose objects went through autopass-cc is left as the user built it.
        kept = [i for i in self.images if i.index == 0 or i.members]
        renumber = {img.index: n for n, img in enumerate(kept)}
        for t in self.tus:
            t.image = renumber[t.image]
        for n, img in enumerate(kept):
            img.index = n
        self.images = kept
        if not self.tus:
            raise BuildLogError(f"none of the objects linked into {target} was compiled through autopass-cc; "
                                "rebuild from clean with CC=autopass-cc")
        self._libs: dict[tuple, str] = {}
        self._links = 0

    def _member_record(self, archive: str, member: str) -> dict | None:
        """The compile record of an archive member: the only object of that name, else the one
        whose bytes are the member's (libtool builds ``x.o`` and ``.libs/x.o`` from one source), else
        the one built nearest the archive, newest first."""
        cands = self._by_name.get(member, [])
        if len(cands) > 1:
            want = _member_digest(archive, member)
            from ..toolchain import file_sha256
            same = []
            for r in cands:
                try:
                    if want and file_sha256(r["output"]) == want:
                        same.append(r)
                except OSError:
                    continue
            cands = same or cands
            cands = sorted(cands, key=lambda r: (os.path.commonpath([r["output"], archive]).count(os.sep), r.get("time", 0)))
        return cands[-1] if cands else None

    def _moved_record(self, path: str, shared: bool) -> dict | None:
        """The compile record of an object a build moved or copied after compiling it (zlib's
        Makefile compiles ``-o objs/x.o`` and renames it ``x.lo``): among the records of objects
        with the same stem, one whose output has ``path``'s bytes, else (``find_moved``) one whose
        output is gone and whose baseline compile in the scratch tree has them -- the
        byte-identity a TU without a tuned pipeline has anyway.  Compiles with -fPIC/-fpic come
        first for a ``shared`` library's link (a small TU can compile to the same bytes either
        way).  None when nothing matches."""
        from ..toolchain import file_sha256
        if self._by_stem is None:
            self._by_stem = {}
            for name, recs in self._by_name.items():
                self._by_stem.setdefault(os.path.splitext(name)[0], []).extend(recs)

        def pic(r: dict) -> bool:
            return any(a in ("-fPIC", "-fpic") for a in r["args"])
        stem = os.path.splitext(os.path.basename(path))[0]
        cands = sorted(self._by_stem.get(stem, []), key=lambda r: (pic(r) != shared, -r.get("time", 0)))
        if not cands:
            return None
        try:
            want = file_sha256(path)
        except OSError:
            return None
        for r in cands:
            if os.path.lexists(r["output"]):
                try:
                    if os.path.isfile(r["output"]) and file_sha256(r["output"]) == want:
                        return r
                except OSError:
                    pass
                continue          # (another object of that name, e.g. x.c's beside an assembled x.o)
            inv = classify_record(r)
            if (not self.find_moved or not isinstance(inv, Invocation)
                    or any(t.output == r["output"] for t in self.tus)):
                continue
            probe = TU(len(self.tus), r["tu_id"], r["source"], r["source"], r["output"], r["cwd"], r["compiler"],
                       r["args"], inv)
            try:
                if file_sha256(self.object_for(probe, Pipeline())) == want:
                    return r
            except (BuildFailed, OSError):
                continue
        return None

    def _add(self, rec: dict, archive: str | None, image: Image) -> None:
        image.members.append(rec["output"])
        if any(t.output == rec["output"] for t in self.tus):
            return
        inv = classify_record(rec)
        if not isinstance(inv, Invocation):
            image.members.pop()
            return
        rel = os.path.relpath(rec["source"], self.project) if rec["source"].startswith(self.project + os.sep) else rec["source"]
        self.tus.append(TU(len(self.tus), rec["tu_id"], rec["source"], rel, rec["output"], rec["cwd"],
                           rec["compiler"], rec["args"], inv, archive, image.index))

    def tu(self, tu_id: str) -> TU:
        return next(t for t in self.tus if t.tu_id == tu_id)

    # -- building ------------------------------------------------------------------------------
    def compile_limit(self, tu: TU) -> float | None:
        """Seconds a compile of ``tu`` with another pipeline or instrumentation may take:
        COMPILE_LIMIT_FACTOR x its compile with the user's flags, at least COMPILE_LIMIT_MIN_S;
        None before that compile was timed."""
        base = self._baseline_s.get(tu.tu_id)
        return None if base is None else max(COMPILE_LIMIT_MIN_S, COMPILE_LIMIT_FACTOR * base)

    def object_for(self, tu: TU, pipeline: Pipeline, extra: list | None = None, subdir: str = "obj") -> str:
        """Compile ``tu`` with ``pipeline`` into the scratch tree (cached) and return the object's
        path.  Raises BuildFailed with clang's first error line, or when the compile exceeds
        :meth:`compile_limit` (it is stopped)."""
        key = (tu.tu_id, pipeline.digest(), subdir)
        if key in self._objects and not extra:
            return self._objects[key]
        out = os.path.join(self.scratch, subdir, pipeline.digest(), str(tu.index), os.path.basename(tu.output))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        baseline = pipeline.is_baseline and not extra
        limit = None if baseline else self.compile_limit(tu)
        t0 = time.monotonic()
        res = compile_tu(tu.compiler, tu.inv, retarget(tu.args, out), pipeline, tu.cwd, output=out, extra=extra,
                         timeout_s=limit)
        if baseline and res.returncode == 0:
            self._baseline_s.setdefault(tu.tu_id, time.monotonic() - t0)
        if res.returncode != 0:
            if limit is not None and time.monotonic() - t0 >= limit:
                raise BuildFailed(f"compile of {tu.rel} stopped after {limit:.0f} s: over {COMPILE_LIMIT_FACTOR:g}x "
                                  f"its {self._baseline_s[tu.tu_id]:.1f} s with the user's flags")
            raise BuildFailed(f"compile error in {tu.rel}: {_first_error(res.stderr)}")
        if not extra:
            self._objects[key] = out
        return out

    def link_config(self, config: dict, subdir: str = "bin", instrument: frozenset = frozenset()) -> Linked:
        """Relink the target with TU id -> Pipeline ``config`` (missing TUs: baseline): each shared
        library of :attr:`images` whose objects changed, then the executable (against the user's
        libraries: only their symbols matter at link time).  ``instrument``: TU ids compiled with
        :data:`INSTRUMENT` (tuning/pgo.py), every image then linked with it too (clang
        links its profile runtime).  Raises BuildFailed."""
        self._links += 1
        workdir = os.path.join(self.scratch, subdir, str(self._links))
        os.makedirs(workdir, exist_ok=True)
        gen = [INSTRUMENT] if instrument else []
        objs = {t.output: (self.object_for(t, config.get(t.tu_id, Pipeline()), extra=gen, subdir="instrumented")
                           if t.tu_id in instrument else self.object_for(t, config.get(t.tu_id, Pipeline())))
                for t in self.tus}
        objs.update({alias: objs[out] for alias, out in self._aliases.items()})
        from ..toolchain import llvm_tool
        archives: dict[str, str] = {}
        for t in self.tus:
            if t.archive and t.archive not in archives:
                copy = os.path.join(workdir, "lib", os.path.basename(t.archive))
                os.makedirs(os.path.dirname(copy), exist_ok=True)
                if t.archive in self._thin:
                    # A copy would still name the user's objects: a regular archive of the same
                    # members in the same order instead, ours in place of the TUs' ("q" keeps
                    # members of the same name apart, as the thin archive does).
                    cmd = [llvm_tool("llvm-ar"), "qcs", copy] + [objs.get(m, m) for m in self._thin[t.archive]]
                else:
                    shutil.copy2(t.archive, copy)
                    cmd = ([llvm_tool("llvm-ar"), "r", copy]
                           + [objs[u.output] for u in self.tus if u.archive == t.archive])
                r = subprocess.run(cmd, capture_output=True)
                if r.returncode != 0:
                    raise BuildFailed(f"archive update failed: {_first_error(r.stderr)}")
                archives[t.archive] = copy
        files = {}
        for img in self.images[1:]:
            key = (img.index, tuple(objs[o] for o in img.members))
            if key not in self._libs or gen:
                out = os.path.join(workdir, f"image{img.index}", os.path.basename(img.path))
                os.makedirs(os.path.dirname(out), exist_ok=True)
                self._relink(img.link, objs, archives, out, gen)
                if not gen:
                    self._libs[key] = out
                files[img.path] = out
            else:
                files[img.path] = self._libs[key]
        out = os.path.join(workdir, os.path.basename(self.target))
        self._relink(self.link, objs, archives, out, gen)
        return Linked({self.target: out, **files})

    def _relink(self, link: dict, objs: dict, archives: dict, out: str, extra: list | None = None) -> None:
        args = self._link_args(link, objs, archives, out) + list(extra or [])
        r = subprocess.run([link["compiler"]] + args, cwd=link["cwd"], capture_output=True,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise BuildFailed(f"link error: {_first_error(r.stderr)}")

    @staticmethod
    def _link_args(link: dict, objs: dict, archives: dict, out: str) -> list[str]:
        cwd = link["cwd"]
        # Objects may sit in response files (@objects.rsp): relink from the expanded list, or the
        # user's objects would be linked and every candidate would equal the baseline.
        src = expand_response_files(link["args"], cwd) or link["args"]
        libs = dict(_library_args(link))
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
            if i in libs and libs[i] in archives:          # -lNAME of a static archive we rebuilt
                args.append(archives[libs[i]])
                i += 2 if a == "-l" else 1
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
    notes = []
    # Journals of older versions hold one file at the top level.
    for entry in j.get("files") or [j]:
        target, backup = entry["target"], entry.get("backup")
        if entry.get("existed") and backup and os.path.exists(backup):
            os.replace(backup, target)
            notes.append(f"restored {target} left swapped by an interrupted session")
        elif not entry.get("existed"):
            try:
                os.unlink(target)
                notes.append(f"removed the scratch file an interrupted session left at {target}")
            except FileNotFoundError:
                pass
    os.unlink(path)
    return "; ".join(notes) or None


def _link_or_copy(src: str, dst: str) -> None:
    """``dst`` becomes a hard link to ``src`` (a copy with its mode and times across file systems),
    replacing whatever was at ``dst``."""
    if os.path.lexists(dst):
        os.unlink(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class BinarySwap:
    """Context manager putting scratch files at the target's paths (see module docstring):
    ``targets`` are the executable and the shared libraries a run loads (:attr:`Program.images`).
    Every file is backed up by a hard link (a copy across file systems) before the first swap and
    renamed back on exit; the journal lists them all."""

    def __init__(self, project: str, targets):
        self.project = project
        self.targets = [targets] if isinstance(targets, str) else list(targets)
        self.target = self.targets[0]
        bdir = os.path.join(state_dir(project), "backup")
        self.backups = {t: os.path.join(bdir, (f"{i}-" if i else "") + os.path.basename(t))
                        for i, t in enumerate(self.targets)}
        self.existed = {t: os.path.lexists(t) for t in self.targets}
        self.current: dict[str, str] = {}

    def __enter__(self) -> "BinarySwap":
        for target, backup in self.backups.items():
            os.makedirs(os.path.dirname(backup), exist_ok=True)
            if self.existed[target]:
                _link_or_copy(target, backup)
        tmp = _journal(self.project) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"files": [{"target": t, "backup": self.backups[t], "existed": self.existed[t]}
                                 for t in self.targets], "pid": os.getpid()}, f)
        os.replace(tmp, _journal(self.project))
        return self

    def install(self, linked: "Linked | str") -> None:
        """Put each scratch file of ``linked`` (a Linked, or one executable's path) at its user
        path (atomic rename of a hard link or copy)."""
        files = linked.files if isinstance(linked, Linked) else {self.target: linked}
        for target, scratch in files.items():
            if self.current.get(target) == scratch:
                continue
            tmp = target + ".autopass-tmp"
            _link_or_copy(scratch, tmp)
            os.replace(tmp, target)
            self.current[target] = scratch

    def __exit__(self, *exc) -> None:
        self.current = {}
        recover(self.project)
        lost = [t for t in self.targets if self.existed[t] and not os.path.lexists(t)]
        if lost:
            raise SessionError(f"could not restore {lost[0]}; the original is at {self.backups[lost[0]]}")
