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

:func:`run_captured` runs one command for the compile hot path: ``posix_spawn`` with stdout and
stderr in memory files (no pipes to drain, no ``subprocess`` import: ~10 ms a process), stderr
through a pseudo-terminal when ours is a terminal (clang then decides colours and layout exactly
as it would writing to the terminal itself), SIGPIPE and SIGXFSZ back to their defaults (Python
ignores them, and ignored signals survive ``exec``).
"""

from __future__ import annotations

import os
from collections import namedtuple

from .invocation import DEP_ARG_FLAGS, DEP_FLAGS, Invocation

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs milliseconds per compile
if TYPE_CHECKING:  # pipeline.py imports dataclasses, re and json: not for every compile
    from .pipeline import Pipeline


class CompileResult(namedtuple("CompileResult", "returncode stdout stderr commands")):
    """Exit code and captured output of the commands run (``commands``: each argv list)."""
    __slots__ = ()


def _memfd(name: str) -> int:
    try:
        return os.memfd_create(name, os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        import tempfile
        fd, path = tempfile.mkstemp(prefix="autopass-")
        os.unlink(path)
        return fd


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0) if size else b""


def _pty_for_stderr():
    """``(master, slave)`` of a pseudo-terminal shaped like our stderr terminal, with output
    post-processing off (no ``\n`` -> ``\r\n``); None when there is none to be had."""
    try:
        import termios
        master, slave = os.openpty()
    except (ImportError, OSError):
        return None
    try:
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        try:
            termios.tcsetwinsize(slave, termios.tcgetwinsize(2))
        except (AttributeError, OSError, termios.error):
            pass
    except (OSError, termios.error):
        os.close(master)
        os.close(slave)
        return None
    return master, slave


#: In a compile server's worker, its forkserver.Client (set by server.py): commands started with
#: ``forkable`` go through a fork server of their executable when one is up.
FORK_SERVERS = None
#: Commands started through a fork server by this process, not yet counted (wrapper.py adds them
#: to the call's counters).
FORKED = [0]


def run_captured(cmd: list[str], env: dict | None = None, tty: bool = False,
                 forkable: bool = False) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` in the current directory; ``(exit code, stdout, stderr)``.  A negative exit
    code is the signal that ended it.  ``tty``: give it a pseudo-terminal as stderr;
    ``forkable``: see :class:`Captured`.  Raises OSError when it cannot be started."""
    return Captured(cmd, env, tty, forkable).wait()


class Captured:
    """``cmd`` started in the current directory with its stdout and stderr captured (see the
    module docstring); :meth:`wait` gives ``(exit code, stdout, stderr)``, :meth:`cancel` ends it.
    Either releases the descriptors; exactly one of them must be called.  ``env``: the
    environment (default ours).  ``forkable``: it may run as a fork of a fork server of
    ``cmd[0]`` (:data:`FORK_SERVERS`; the caller vouches that it does not read standard input,
    which a compile run again after a fork server died could not read twice).  Raises OSError
    when it cannot be started."""

    def __init__(self, cmd: list[str], env: dict | None = None, tty: bool = False, forkable: bool = False):
        env = os.environ if env is None else env
        self.cmd, self.env, self.forked, self.cancelled = cmd, env, None, False
        self.out_fd = _memfd("autopass-stdout")
        self.pty = _pty_for_stderr() if tty else None
        self.err_fd = self.pty[1] if self.pty else _memfd("autopass-stderr")
        try:
            if forkable and FORK_SERVERS is not None:
                self.forked = FORK_SERVERS.run(cmd, env, self.out_fd, self.err_fd)
            if self.forked is not None:
                self.pid = self.forked.pid
                FORKED[0] += 1
            else:
                self.pid = self._spawn()
        except BaseException:
            if self.pty:
                os.close(self.pty[1])
            self._close()
            raise
        if self.pty:
            os.close(self.pty[1])

    def _spawn(self) -> int:
        import _signal
        cmd = self.cmd
        spawn = os.posix_spawn if os.sep in cmd[0] else os.posix_spawnp
        return spawn(cmd[0], cmd, self.env, file_actions=[(os.POSIX_SPAWN_DUP2, self.out_fd, 1),
                                                          (os.POSIX_SPAWN_DUP2, self.err_fd, 2)],
                     setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))

    def wait(self) -> tuple[int, bytes, bytes]:
        """Wait for the command: ``(exit code, stdout bytes, stderr bytes)``; a negative exit code
        is the signal that ended it."""
        try:
            err = self._read_pty() if self.pty else b""
            status = self.forked.wait_status() if self.forked is not None else None
            if self.forked is not None and status is None:
                if self.cancelled:
                    status = 15  # (as if ended by the SIGTERM sent)
                else:
                    self._again()
            self.forked = None
            while status is None:
                try:
                    _, status = os.waitpid(self.pid, 0)
                except ChildProcessError:
                    status = 0
                except InterruptedError:
                    continue
            out = _read_all(self.out_fd)
            if not self.pty:
                err = _read_all(self.err_fd)
            return os.waitstatus_to_exitcode(status), out, err
        finally:
            self._close()

    def _read_pty(self) -> bytes:
        chunks = []
        while True:
            try:
                b = os.read(self.pty[0], 65536)
            except OSError:  # EIO: every slave descriptor closed
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)

    def _again(self) -> None:
        """The fork server ended before it reported how the compile it started ended (that
        compile has ended too, forkserver.Forked): run the command again as a child of ours, its
        output so far dropped.  Its stderr then goes to a file even where it went to a
        pseudo-terminal (whose every slave descriptor is closed by now): in this rare case clang
        writes its diagnostics without colours."""
        if self.pty:
            os.close(self.pty[0])
            self.pty = None
            self.err_fd = _memfd("autopass-stderr")
        for fd in (self.out_fd, self.err_fd):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)  # (the offset is shared with the descriptors the compile had)
        self.pid = self._spawn()

    def cancel(self) -> None:
        """End the command (SIGTERM: clang removes the outputs it has begun, as LLVM's
        RemoveFileOnSignal registers them; checked with clang-19 killed at 1-80 ms into a
        compile: no file left) and wait for it; its output is dropped."""
        self.cancelled = True
        try:
            os.kill(self.pid, 15)
        except OSError:
            pass
        self.wait()

    def _close(self) -> None:
        os.close(self.out_fd)
        os.close(self.pty[0] if self.pty else self.err_fd)


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


class _Done(namedtuple("_Done", "returncode stdout stderr")):
    __slots__ = ()


def _run(cmd: list[str], cwd: str, capture: bool, env: dict | None = None, tty: bool = False,
         timeout_s: float | None = None, forkable: bool = False):
    if capture and timeout_s is None and (cwd in (".", "") or os.path.realpath(cwd) == os.getcwd()):
        return _Done(*run_captured(cmd, env=env, tty=tty, forkable=forkable))
    import subprocess
    try:
        return subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, env=env, timeout=timeout_s,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired as e:  # (subprocess.run killed it)
        return _Done(-9, e.stdout or b"", (e.stderr or b"")
                     + f"autopass-cc: compile stopped after {timeout_s:.0f} s (time limit)\n".encode())


def compile_tu(compiler: str, inv: Invocation, args: list[str], pipeline: Pipeline, cwd: str, *,
               output: str | None = None, extra: list[str] | None = None, capture: bool = True,
               opt_tool: str | None = None, env: dict | None = None, tty: bool = False,
               timeout_s: float | None = None, forkable: bool = False) -> CompileResult:
    """Compile one TU with ``pipeline``.

    ``args``: the argv after the compiler (the user's, or :func:`retarget`-ed ones); ``output``:
    where the object goes (default: the invocation's ``-o``); ``extra``: arguments appended to the
    front-end step (e.g. ``-fsave-optimization-record``); ``env``: the compiler's environment;
    ``tty``: capture stderr through a pseudo-terminal (run_captured); ``timeout_s``: seconds each
    command may take before it is killed (a result with exit code -9 and a last stderr line saying
    so; None: no limit, as for the user's own compiles); ``forkable``: the commands may run through
    fork servers (:class:`Captured`).  Returns a CompileResult; never raises
    for a failing compile (CompilerNotFound if ``opt-19`` is needed and missing)."""
    output = output or inv.output
    front = [compiler] + tuned_args(args, pipeline) + list(extra or [])
    if pipeline.passes is None:
        r = _run(front, cwd, capture, env, tty, timeout_s, forkable)
        return CompileResult(r.returncode, r.stdout or b"", r.stderr or b"", [front])
    from .toolchain import llvm_tool
    opt = opt_tool or llvm_tool("opt")
    out_abs = os.path.join(cwd, output)
    tmp_bc = out_abs + ".autopass.bc"
    step1 = front + ["-Xclang", "-disable-llvm-passes", "-emit-llvm"]
    step2 = [opt] + [f"-{n}={v}" for n, v in pipeline.knobs] + [f"-passes={pipeline.passes}", out_abs, "-o", tmp_bc]
    level = [f"-{pipeline.opt_level}"] if pipeline.opt_level else []
    step3 = ([compiler] + backend_args(inv) + level + pipeline.backend_clang_args()
             + ["-Wno-unused-command-line-argument", "-Xclang", "-disable-llvm-passes", "-c", tmp_bc, "-o", out_abs])
    stdout, stderr, cmds = b"", b"", []
    try:
        for cmd in (step1, step2, step3):
            if cmd is step2:
                cmd[1:1] = opt_target_args(out_abs, inv.codegen_args)
            cmds.append(cmd)
            r = _run(cmd, cwd, True, env, tty, timeout_s, forkable)
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
