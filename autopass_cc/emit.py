"""Invocation + Pipeline -> the commands that produce the object file.

Flags and ``-mllvm`` knobs are appended to the user's own command (for clang the last option
wins; a user ``-mllvm -X=..`` for a knob the pipeline sets is removed, because LLVM refuses most
options given twice).  A pipeline with an ``opt`` pass string takes the split route of
ARCHITECTURE.md decision 1:

1. ``clang <user args + flags> -Xclang -disable-llvm-passes -emit-llvm -c src -o OUT``  (front end
   only; the user's ``-o`` and dependency-file options are kept, so the depfile is clang's own);
2. ``opt-19 -passes=PIPELINE OUT -o OUT.autopass.bc``;
3. ``clang <codegen args> -Xclang -disable-llvm-passes -c OUT.autopass.bc -o OUT``  (back end only).

Plain ``clang -O3 -c x.bc`` would run the -O3 middle end a second time, and -O0 bitcode carries
``optnone``; hence ``-disable-llvm-passes`` on both clang steps.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from .invocation import DEP_ARG_FLAGS, DEP_FLAGS, Invocation
from .pipeline import Pipeline


@dataclass
class CompileResult:
    """Exit code and captured output of the commands run (``commands``: each argv list)."""
    returncode: int
    stdout: bytes
    stderr: bytes
    commands: list


def tuned_args(args: list[str], pipeline: Pipeline) -> list[str]:
    """The user's ``args`` with the pipeline's flags and knobs appended (passes not included)."""
    knob_names = {name for name, _ in pipeline.knobs}
    out = []
    i = 0
    while i < len(args):
        if args[i] == "-mllvm" and i + 1 < len(args):
            name = args[i + 1].lstrip("-").split("=", 1)[0]
            if name in knob_names:
                i += 2
                continue
            out += args[i:i + 2]
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out + pipeline.clang_args()


def retarget(args: list[str], output: str) -> list[str]:
    """``args`` writing the object to ``output`` instead, with dependency-file options removed
    (a session's scratch compiles must not touch the user's ``.d`` files)."""
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o",) or a in DEP_ARG_FLAGS:
            i += 2
            continue
        if a in DEP_FLAGS or (a.startswith(("-MF", "-MT", "-MQ", "-MJ")) or (a.startswith("-o") and len(a) > 2)):
            i += 1
            continue
        out.append(a)
        i += 1
    return out + ["-o", output]


def backend_args(inv: Invocation) -> list[str]:
    """Code-generation arguments for the back-end-only step of the split route: the codegen
    arguments without ``-x`` (the input is bitcode) and without ``-Werror`` (driver warnings about
    unused front-end options must not fail it)."""
    out, skip = [], False
    for a in inv.codegen_args:
        if skip:
            skip = False
            continue
        if a == "-x":
            skip = True
            continue
        if a.startswith("-x") or a.startswith("-Werror") or a.startswith("-std="):
            continue
        out.append(a)
    return out


def opt_target_args(bitcode: str, codegen_args=()) -> list[str]:
    """Target-machine options for the ``opt`` step of the split route, which clang gives its own
    middle end but which bitcode does not carry.

    ``opt`` builds its TargetMachine with the *static* relocation model unless told otherwise,
    while clang on Debian/Ubuntu defaults to PIE.  TTI.shouldBuildRelLookupTables() (BasicTTIImpl.h)
    then differs and SimplifyCFG's switch lookup tables come out absolute instead of relative:
    ``-passes='default<O3>'`` gave a different ``.text`` than ``clang -O3 -c`` for a switch in
    tests/programs/interp-cmake/src/chunk.c.  The front end records -fpic/-fpie as the "PIC Level"
    module flag, whose name is stored verbatim in the bitcode's metadata-strings blob; the code
    model (which also gates relative tables) comes from the user's ``-mcmodel=``."""
    out = []
    try:
        with open(bitcode, "rb") as f:
            if b"PIC Level" in f.read():
                out.append("-relocation-model=pic")
    except OSError:
        pass
    for a in codegen_args:
        if a.startswith("-mcmodel=") and a[9:] in ("small", "kernel", "medium", "large"):
            out = [o for o in out if not o.startswith("-code-model=")] + [f"-code-model={a[9:]}"]
    return out


def _run(cmd: list[str], cwd: str, capture: bool) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)


def compile_tu(compiler: str, inv: Invocation, args: list[str], pipeline: Pipeline, cwd: str, *,
               output: str | None = None, extra: list[str] | None = None, capture: bool = True,
               opt_tool: str | None = None) -> CompileResult:
    """Compile one TU with ``pipeline``.

    ``args``: the argv after the compiler (the user's, or :func:`retarget`-ed ones); ``output``:
    where the object goes (default: the invocation's ``-o``); ``extra``: arguments appended to the
    front-end step (e.g. ``-fsave-optimization-record``).  Returns a CompileResult; never raises
    for a failing compile (CompilerNotFound if ``opt-19`` is needed and missing)."""
    output = output or inv.output
    front = [compiler] + tuned_args(args, pipeline) + list(extra or [])
    if pipeline.passes is None:
        r = _run(front, cwd, capture)
        return CompileResult(r.returncode, r.stdout or b"", r.stderr or b"", [front])
    from .toolchain import llvm_tool
    opt = opt_tool or llvm_tool("opt")
    out_abs = os.path.join(cwd, output)
    tmp_bc = out_abs + ".autopass.bc"
    step1 = front + ["-Xclang", "-disable-llvm-passes", "-emit-llvm"]
    step2 = [opt] + [f"-{n}={v}" for n, v in pipeline.knobs] + [f"-passes={pipeline.passes}", out_abs, "-o", tmp_bc]
    level = [f"-{pipeline.opt_level}"] if pipeline.opt_level else []
    step3 = ([compiler] + backend_args(inv) + level + [a for a in pipeline.clang_args() if a != f"-{pipeline.opt_level}"]
             + ["-Wno-unused-command-line-argument", "-Xclang", "-disable-llvm-passes", "-c", tmp_bc, "-o", out_abs])
    stdout, stderr, cmds = b"", b"", []
    try:
        for cmd in (step1, step2, step3):
            if cmd is step2:
                cmd[1:1] = opt_target_args(out_abs, inv.codegen_args)
            cmds.append(cmd)
            r = _run(cmd, cwd, True)
            stdout += r.stdout or b""
            stderr += r.stderr or b""
            if r.returncode != 0:
                return CompileResult(r.returncode, stdout, stderr, cmds)
        return CompileResult(0, stdout, stderr, cmds)
    finally:
        try:
            os.unlink(tmp_bc)
        except OSError:
            pass
