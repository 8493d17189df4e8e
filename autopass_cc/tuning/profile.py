"""Hot spots without ``perf``: which functions, hence which TUs, the run command spends its time in.

``perf`` counters do not work on the target machines (containers, shared 2-core boxes), so the
default profiler is Valgrind's callgrind: it counts executed instructions ("Ir") per function,
exactly and deterministically, at a 20-100x slowdown.  Instruction counts are a proxy for time
(they ignore cache misses and stalls) but rank hot functions well enough to pick what to tune.

* :func:`hot_functions_callgrind` runs the user's shell command under callgrind (children
  included) and returns each function's share of all instructions executed;
* :func:`parse_callgrind` reads one callgrind output file (our own parser of the format described
  in Valgrind's manual, "Callgrind Format Specification");
* :func:`symbols_of_object` and :func:`hot_tus` map functions to the TUs whose objects define them;
* :func:`without_debug_info` makes the copies of the program that callgrind runs;
* :func:`hot_functions_profdata` is an alternative from ``-fprofile-instr-generate`` profiles.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field

from ..errors import AutopassError

#: Executables whose children callgrind does not follow by default (system tools in a pipeline:
#: ``cat``, ``diff``, ``sort`` ...).  A program launched *through* one of them (``make run``,
#: ``env X=1 ./prog``) is then not traced either: :func:`hot_functions_callgrind` notices that no
#: non-system code was seen and runs once more tracing everything.
DEFAULT_SKIP = "/bin/*,/usr/bin/*,/sbin/*,/usr/sbin/*"
#: Object files under these directories are "system" code (libc, the dynamic loader, tools).
SYSTEM_PREFIXES = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/libexec/", "/bin/", "/usr/bin/",
                   "/sbin/", "/usr/sbin/", "/usr/local/libexec/valgrind/", "/usr/libexec/valgrind/")


class ProfileError(AutopassError):
    """Profiling could not be done (valgrind missing, the command failed or timed out)."""


class CallgrindTimeout(ProfileError):
    """The run command did not finish under callgrind in the time it was given."""


@dataclass
class CallgrindData:
    """One callgrind output file: ``pid``, ``cmd`` (the command line recorded), ``events`` (event
    names, e.g. ``["Ir"]``), ``summary`` (total of the first event as written by callgrind, or
    None), ``exclusive`` ((object, function) -> exclusive cost of the first event) and
    ``inclusive_calls`` ((caller object, caller function, callee function) -> inclusive cost of
    the calls, kept apart from the caller's exclusive cost)."""
    pid: int | None = None
    cmd: str = ""
    events: list = field(default_factory=list)
    summary: int | None = None
    exclusive: dict = field(default_factory=dict)
    inclusive_calls: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Sum of the exclusive costs (equals ``summary`` for a complete file)."""
        return sum(self.exclusive.values())


_NAME_RE = re.compile(r"^\((\d+)\)(?:\s(.*))?$")


#: Callgrind names the recursion levels of a function ``f'2``, ``f'3`` ... (``--separate-recs``,
#: default 2: Valgrind manual, callgrind options); they are all ``f``'s code.
_RECURSION_RE = re.compile(r"'\d+$")


def _name(table: dict, value: str) -> str:
    """Resolve callgrind's name compression: ``(id) name`` defines, ``(id)`` refers."""
    m = _NAME_RE.match(value)
    if not m:
        return value
    ident, name = m.group(1), m.group(2)
    if name is not None:
        table[ident] = name
        return name
    return table.get(ident, f"({ident})")


def _function(table: dict, value: str) -> str:
    """A function name (:func:`_name`) without callgrind's recursion-level suffix."""
    return _RECURSION_RE.sub("", _name(table, value))


def parse_callgrind(path: str) -> CallgrindData:
    """Parse a callgrind output file: exclusive cost (first event, normally ``Ir``) per function.

    Format (Valgrind manual, "Callgrind Format Specification"): ``ob=``/``fl=``/``fi=``/``fe=``/
    ``fn=`` set the current object, file and function, with name compression ``(id) name``
    (separate id spaces for objects, files and functions; ``cob``/``cfi``/``cfl``/``cfn`` share
    them); a cost line is ``<positions> <costs>`` where a position may be ``+N``/``-N`` (relative)
    or ``*`` (same); ``calls=<count> <target position>`` says that the *next* cost line is the
    inclusive cost of that call, which belongs to the callee and must not be added to the caller's
    exclusive cost; ``jump=``/``jcnd=`` lines carry no cost.  The recursion levels callgrind
    names ``f'2``, ``f'3`` count as ``f``.  Raises OSError/ValueError."""
    data = CallgrindData()
    obs: dict = {}
    files: dict = {}
    fns: dict = {}
    npos = 1
    ob = fn = cfn = ""
    in_call = False
    costs = data.exclusive
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if c == "-" and line.startswith("--"):
                    continue
                parts = line.split()
                ir = 0
                if len(parts) > npos:
                    tok = parts[npos]
                    ir = int(tok, 16) if tok.startswith("0x") else int(tok)
                if in_call:
                    key = (ob, fn, cfn)
                    data.inclusive_calls[key] = data.inclusive_calls.get(key, 0) + ir
                    in_call = False
                elif ir:
                    key = (ob, fn)
                    costs[key] = costs.get(key, 0) + ir
                continue
            if c == "#":
                continue
            key, sep, value = line.partition("=")
            if sep and " " not in key and ":" not in key:
                if key == "fn":
                    fn = _function(fns, value)
                elif key == "ob":
                    ob = _name(obs, value)
                elif key in ("fl", "fi", "fe", "cfi", "cfl"):
                    _name(files, value)
                elif key == "cfn":
                    cfn = _function(fns, value)
                elif key == "cob":
                    _name(obs, value)
                elif key == "calls":
                    in_call = True
                elif key in ("jump", "jcnd"):
                    pass
                continue
            key, sep, value = line.partition(":")
            if not sep:
                continue
            value = value.strip()
            if key == "positions":
                npos = max(1, len(value.split()))
            elif key == "events":
                data.events = value.split()
            elif key == "summary":
                try:
                    data.summary = int(value.split()[0])
                except (ValueError, IndexError):
                    pass
            elif key == "pid":
                try:
                    data.pid = int(value)
                except ValueError:
                    pass
            elif key == "cmd":
                data.cmd = value
    return data


def _is_system(obj: str) -> bool:
    """True for code that is not the user's: system libraries and tools, valgrind's preloads, and
    ``???`` (code without an object: PLT stubs, trampolines)."""
    return (obj.startswith(SYSTEM_PREFIXES) or "/valgrind/" in obj or obj in ("???", "")
            or os.path.basename(obj).startswith("ld-linux"))


def _saw_user_code(runs: list) -> bool:
    """Whether any traced process spent at least 1 % of all instructions in non-system code."""
    total = sum(d.total for d in runs)
    user = sum(n for d in runs for (ob, _fn), n in d.exclusive.items() if not _is_system(ob))
    return total > 0 and user >= 0.01 * total


def _run_callgrind(cmd: str, cwd: str, timeout_s: float, workdir: str, skip: str) -> list[CallgrindData]:
    from .measure import run_command
    for old in glob.glob(os.path.join(workdir, "cg.*")):
        try:
            os.unlink(old)
        except OSError:
            pass
    vg = [_valgrind(), "--tool=callgrind", "--trace-children=yes", "--demangle=no", "-q",
          f"--callgrind-out-file={os.path.join(workdir, 'cg.%p')}"]
    if skip:
        vg.append(f"--trace-children-skip={skip}")
    line = " ".join(shlex.quote(a) for a in vg + ["/bin/sh", "-c", cmd])
    r = run_command(line, cwd, timeout_s)
    if r.timed_out:
        raise CallgrindTimeout(f"the run command timed out under callgrind after {timeout_s:.0f} s "
                           "(callgrind runs programs 20-100x slower and is given 60x the run's own time: shorten the "
                           "run command, or set profile = \"none\")")
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        # Valgrind stops at an instruction it cannot decode (seen on FLAC's FMA code: "vex
        # amd64->IR: unhandled instruction bytes"), a line the backtrace after it pushes out of
        # the tail: name it first.
        unknown = [line.strip() for line in err.splitlines()
                   if "unhandled instruction" in line or "Unrecognised instruction" in line]
        raise ProfileError(f"the run command failed under callgrind (exit {r.returncode})"
                           + (f": valgrind does not know an instruction the program uses ({unknown[0][:120]})"
                              if unknown else ": " + err.strip()[-300:]))
    out = []
    for path in sorted(glob.glob(os.path.join(workdir, "cg.*"))):
        try:
            out.append(parse_callgrind(path))
        except (OSError, ValueError):
            continue
    return out


def without_debug_info(files: dict, workdir: str) -> dict:
    """Copies of the ELF images ``files`` (user path -> scratch path, as in program.Linked) with
    their debug information removed (``llvm-objcopy-19 --strip-debug``; the symbol table, which
    callgrind names functions by, stays), in ``workdir``: the returned mapping names the copies.
    Why: Valgrind 3.19 (Debian 12) gives up on the DWARF 5 that clang-19 writes for some programs
    ("debuginfo reader: Possibly corrupted debuginfo file ... I can't recover", measured on the
    sqlite3 shell built -g -O2), failing the whole run; it also reads large debug information
    slowly.  An image that cannot be stripped is used as it is.  Never raises."""
    from ..toolchain import llvm_tool
    try:
        objcopy = llvm_tool("llvm-objcopy")
    except Exception:
        return dict(files)
    os.makedirs(workdir, exist_ok=True)
    out = {}
    for i, (user, scratch) in enumerate(files.items()):
        dest = os.path.join(workdir, f"{i}-{os.path.basename(scratch)}")
        try:
            r = subprocess.run([objcopy, "--strip-debug", scratch, dest], capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=300)
            ok = r.returncode == 0 and os.path.isfile(dest)
        except (OSError, subprocess.SubprocessError):
            ok = False
        out[user] = dest if ok else scratch
    return out


def _valgrind() -> str:
    from ..toolchain import which_real
    vg = which_real("valgrind")
    if not vg:
        raise ProfileError("valgrind not found; install it (apt-get install valgrind) or set profile = \"none\"")
    return vg


def hot_functions_callgrind(cmd: str, cwd: str, timeout_s: float, workdir: str, *,
                            skip: str = DEFAULT_SKIP, executed: set | None = None) -> dict[str, float]:
    """Run the shell command ``cmd`` (in ``cwd``, killed after ``timeout_s`` seconds) under
    ``valgrind --tool=callgrind --trace-children=yes --trace-children-skip=<skip>``, one output
    file per process in ``workdir`` (``cg.<pid>``), and return ``{function: share}``: each
    function's exclusive instruction count (Ir) divided by the total Ir of every traced process
    (the ``/bin/sh`` that runs the line, the program, its children), summed over processes, so
    the shares add up to 1 (0..1 each).  Names are as in the symbol table (``--demangle=no``:
    C++ names stay mangled, matching ``llvm-nm`` and optimization remarks).  A static function
    defined in several objects appears once with the sum of its costs.

    If the traced processes spent under 1 % of their instructions in non-system code (the program
    was started through a skipped system tool such as ``make`` or ``env``), the command is run once
    more with every child traced.  ``executed``, when given, receives the paths of the non-system
    ELF objects (programs and shared libraries, as mapped) that ran any instruction.
    Raises ProfileError when valgrind is missing or the command fails or times out."""
    os.makedirs(workdir, exist_ok=True)
    runs = _run_callgrind(cmd, cwd, timeout_s, workdir, skip)
    if skip and not _saw_user_code(runs):
        runs = _run_callgrind(cmd, cwd, timeout_s, workdir, "")
    totals: dict[str, int] = {}
    for d in runs:
        for (ob, fn), n in d.exclusive.items():
            totals[fn] = totals.get(fn, 0) + n
            if executed is not None and n and ob and not _is_system(ob):
                executed.add(ob)
    grand = sum(totals.values())
    if grand <= 0:
        raise ProfileError("callgrind recorded no instructions (no output files in " + workdir + ")")
    return dict(sorted(((fn, n / grand) for fn, n in totals.items()), key=lambda kv: -kv[1]))


_NM_TEXT_TYPES = set("TtWi")


def symbols_of_object(obj: str) -> set[str]:
    """Names of the functions an object file defines: ``llvm-nm-19 --defined-only`` symbols of
    type T/t (text, global/local), W (weak, e.g. C++ inline functions) and i (ifunc).  Raises
    ProfileError if llvm-nm fails."""
    from ..toolchain import llvm_tool
    r = subprocess.run([llvm_tool("llvm-nm"), "--defined-only", obj], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise ProfileError(f"llvm-nm failed on {obj}: {r.stderr.strip()[:200]}")
    out = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-2] in _NM_TEXT_TYPES:
            out.add(parts[-1])
        elif len(parts) == 2 and parts[0] in _NM_TEXT_TYPES:
            out.add(parts[1])
    return out


def hot_tus(func_shares: dict[str, float], objects: dict[str, str]) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """Map function shares to TUs: ``[(tu_id, share, [(function, share), ...]), ...]``, hottest TU
    first, functions hottest first; TUs with no profiled function are left out.

    ``objects`` maps TU id -> its object file.  A name defined by several objects (static
    functions of the same name in different TUs, or weak C++ inline functions) has its share
    split evenly among them: the profile cannot tell the copies apart by name, and an even split
    never makes one TU look hotter than the evidence allows.  Unreadable objects are skipped."""
    owners: dict[str, list[str]] = {}
    for tu_id, obj in objects.items():
        try:
            syms = symbols_of_object(obj)
        except (ProfileError, OSError, subprocess.SubprocessError):
            continue
        for s in syms:
            owners.setdefault(s, []).append(tu_id)
    per_tu: dict[str, list] = {}
    for fn, share in func_shares.items():
        tus = owners.get(fn)
        if not tus or share <= 0:
            continue
        part = share / len(tus)
        for tu in tus:
            per_tu.setdefault(tu, []).append((fn, part))
    out = []
    for tu, funcs in per_tu.items():
        funcs.sort(key=lambda x: -x[1])
        out.append((tu, sum(s for _, s in funcs), funcs))
    out.sort(key=lambda x: -x[1])
    return out


def hot_functions_profdata(profraw_files: list[str], workdir: str) -> dict[str, float]:
    """Alternative to callgrind for programs built with ``-fprofile-instr-generate``: merge the
    ``.profraw`` files with ``llvm-profdata-19 merge`` and weight each function by the sum of its
    counters (``llvm-profdata-19 show --all-functions --counts``: function entry count plus block
    counts), returned as shares of the total (0..1).  Counters count executions of code regions,
    not instructions, so the weights are rougher than callgrind's.  Static functions appear as
    ``file.c;name`` in the profile; the ``file;`` prefix is removed.  Raises ProfileError."""
    from ..toolchain import llvm_tool
    os.makedirs(workdir, exist_ok=True)
    tool = llvm_tool("llvm-profdata")
    merged = os.path.join(workdir, "merged.profdata")
    r = subprocess.run([tool, "merge", "-o", merged] + list(profraw_files), capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise ProfileError(f"llvm-profdata merge failed: {r.stderr.strip()[:300]}")
    r = subprocess.run([tool, "show", "--all-functions", "--counts", merged], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise ProfileError(f"llvm-profdata show failed: {r.stderr.strip()[:300]}")
    weights: dict[str, int] = {}
    fn = None
    for line in r.stdout.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and line.rstrip().endswith(":"):
            fn = line.strip()[:-1]
            fn = fn.split(";", 1)[1] if ";" in fn else fn
            weights.setdefault(fn, 0)
        elif fn is not None and line.strip().startswith("Block counts:"):
            nums = re.findall(r"\d+", line.split(":", 1)[1])
            weights[fn] += sum(int(n) for n in nums)
        elif fn is not None and line.strip().startswith("Function count:"):
            weights[fn] += int(line.split(":", 1)[1].strip() or 0)
    total = sum(weights.values())
    if total <= 0:
        raise ProfileError("the profile has no counts")
    return dict(sorted(((f, w / total) for f, w in weights.items() if w), key=lambda kv: -kv[1]))
