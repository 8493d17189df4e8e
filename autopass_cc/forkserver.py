"""Compiler fork servers: start a compile as a fork of an already-initialised compiler.

A fork server is the real compiler started once with :data:`LIBRARY` (forkserver.c) preloaded:
it loads and relocates its libraries and runs their constructors, then forks a copy of itself
per compile, which runs the compiler's own ``main()`` with the caller's argv, environment,
standard streams, directory, umask and process group.  Measured here (clang-19, Debian's packages): ``clang-19 -O3 -c`` of an empty file
took 25.5 ms per compile when exec-ed, 8.3 ms as a fork of a fork server, with identical objects;
the 17 ms are libLLVM's and libclang-cpp's relocation and static constructors, paid by every
exec-ed compile.  forkserver.c's header has the protocol and the known differences.

Who uses it: the compile server's workers (server.py sets :data:`emit.FORK_SERVERS` to a
:class:`Client`), for the compiles they run themselves (emit.Captured with ``forkable``) and
for pass-throughs without a ``-`` argument (server.py's ``hand_back``), when

* the command's executable is an ELF file (not a script: the fork server would be its
  interpreter) and the compile does not read standard input (a compile that must be run again
  after a fork server died could not read it twice);
* the environment has no variable that the dynamic loader or glibc read at a program's start
  (``LD_*``, ``GLIBC_TUNABLES``, ``MALLOC_*``, :func:`env_allows`): the fork server started with
  none of them, and a compile that sets one gets an exec-ed compiler, as it would without us;
* a fork server for that executable is up.  When none is, the worker asks the compile server to
  start one (``F`` on its control socket, :func:`start`) and compiles the usual way meanwhile.
  A fork server is keyed by the executable's and the library's identity (device, inode, size,
  mtime): an upgraded compiler gets a new one; the old one ends when idle, with the compile
  server, or, within a second, once a file it has mapped is deleted (forkserver.c).

``AUTOPASS_FORK_SERVER=0`` (environment) or ``fork_server = false`` (config) turns it off.
"""

from __future__ import annotations

import os

#: The preloaded library, built by install.sh from forkserver.c (not ``forkserver.so``: Python
#: would import that as this module).
LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libautopass-forkserver.so")

#: Environment variables read by the dynamic loader or glibc when a program starts (ld.so(8),
#: glibc manual "Tunables" and "Memory Allocation Tunables"): a compile whose environment has one
#: runs exec-ed, since a fork server started without it.
_START_PREFIXES = ("LD_", "GLIBC_", "MALLOC_")

#: Seconds a worker waits for a fork server to say it has started a compile (``P``) before it
#: compiles by itself; a fork server forks in ~1 ms, so only a stopped or hung one takes this long.
#: Its child checks that the worker still waits before it runs anything (forkserver.c).
START_TIMEOUT_S = 10.0

#: Seconds before a worker asks again for a fork server that is not up (one that ended idle is
#: started again; one that cannot start is refused by the compile server, server.py).
ASK_AGAIN_S = 10.0


def env_allows(env) -> bool:
    """True when nothing in ``env`` (a mapping) changes how a program starts (_START_PREFIXES)."""
    return not any(k.startswith(_START_PREFIXES) for k in env)


def _identity(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def socket_path(base: str, exe: str) -> str | None:
    """The fork server socket for executable ``exe`` next to the compile server socket ``base``:
    ``<base>.fs-<16 hex digits>``, a digest of the identities of ``exe`` and of :data:`LIBRARY`;
    None when either cannot be read."""
    a, b = _identity(exe), _identity(LIBRARY)
    if a is None or b is None:
        return None
    import hashlib
    return f"{base}.fs-{hashlib.sha1(repr((a, b)).encode()).hexdigest()[:16]}"


def start(sock: str, exe: str, idle_s: float) -> int:
    """Start the fork server of ``exe`` on ``sock`` as a child of this process (the compile
    server: the fork server ends when it does); returns its pid.  It is ``exe --version`` with
    :data:`LIBRARY` preloaded and the socket named in its environment; when the library does not
    take hold (a static executable, another C library), that command runs and ends, and no socket
    appears.  Raises OSError when it cannot be started."""
    env = {"LD_PRELOAD": LIBRARY, "AUTOPASS_FORKSERVER_SOCKET": sock,
           "AUTOPASS_FORKSERVER_PARENT": str(os.getpid()), "AUTOPASS_FORKSERVER_IDLE": str(idle_s)}
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        return os.posix_spawn(exe, [exe, "--version"], env, setsigdef=range(1, 32), setsigmask=(),
                              file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
                                            (os.POSIX_SPAWN_DUP2, null, 2)])
    finally:
        os.close(null)


def running(server_pid: int) -> list[dict]:
    """The fork servers the compile server ``server_pid`` has started and that are alive:
    ``[{"pid", "compiler", "socket"}]`` (from /proc: its children whose environment names a fork
    server socket; ``compiler`` is the executable behind /proc/PID/exe).  Never raises."""
    out = []
    try:
        with open(f"/proc/{server_pid}/task/{server_pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return out
    for pid in children:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
            sock = env.get(b"AUTOPASS_FORKSERVER_SOCKET")
            if sock is not None:
                out.append({"pid": pid, "compiler": os.readlink(f"/proc/{pid}/exe"), "socket": os.fsdecode(sock)})
        except OSError:
            continue
    return out


class Forked:
    """A compile started by a fork server: ``pid``; :meth:`wait_status` gives its raw wait
    status, or None when the fork server ended before reporting it (the compile has ended too
    by then; its outcome is unknown)."""

    def __init__(self, conn, pid: int, pending: bytearray):
        self.conn, self.pid, self.pending = conn, pid, pending

    def wait_status(self) -> int | None:
        """Block until the compile ends; its raw ``waitpid`` status, or None (class docstring)."""
        try:
            line = _line(self.conn, self.pending)
        finally:
            self.conn.close()
        if line[:1] == b"S":
            try:
                return int(line[1:])
            except ValueError:
                pass
        # The fork server is gone: wait until the compile it started has ended, then let the
        # caller run it again its own way.
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            return None
        try:
            import select
            select.select([fd], [], [])
        finally:
            os.close(fd)
        return None


def _connect(conn, path: str) -> None:
    """``conn.connect(path)``, also where ``path`` is longer than a socket address holds (108
    bytes): then through ``/proc/self/fd/N/NAME`` of its directory."""
    if len(os.fsencode(path)) < 100:
        conn.connect(path)
        return
    d = os.open(os.path.dirname(path) or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        conn.connect(f"/proc/self/fd/{d}/{os.path.basename(path)}")
    finally:
        os.close(d)


def _line(conn, pending: bytearray) -> bytes:
    """One reply line (with its newline); b"" at end of file, an error or the socket's timeout.
    ``pending``: what was read beyond earlier lines (both of a fast compile's lines, ``P`` and
    ``S``, may arrive in one read), kept between calls."""
    while b"\n" not in pending:
        try:
            b = conn.recv(64)
        except InterruptedError:
            continue
        except OSError:  # (socket.timeout too)
            return b""
        if not b:
            return b""
        pending += b
    end = pending.index(b"\n") + 1
    line = bytes(pending[:end])
    del pending[:end]
    return line


def encode_command(argv: list[str], env: dict) -> bytes:
    """``argc\\0``, then each argument and each ``NAME=value`` of ``env``, each ended by NUL: how
    a command travels to a fork server (after its umask and process group) and back to the client
    (server.py, a pass-through handed back)."""
    enc = os.fsencode
    return b"".join([b"%d\0" % len(argv)] + [enc(a) + b"\0" for a in argv]
                    + [enc(k) + b"=" + enc(v) + b"\0" for k, v in env.items()])


class Client:
    """A worker's way to its fork servers.  ``base``: the compile server's socket path;
    ``ask``: a callable taking the bytes of a start request for the compile server (``exe`` and
    the socket path, NUL-separated), called at most once per socket path per ASK_AGAIN_S seconds
    per process."""

    def __init__(self, base: str, ask):
        self.base, self.ask = base, ask
        self._asked: dict[str, float] = {}
        self._paths: dict[tuple, str | None] = {}

    def run(self, cmd: list[str], env, out_fd: int, err_fd: int) -> Forked | None:
        """Start ``cmd`` (``cmd[0]`` a path) through its fork server with ``env`` (a mapping),
        this process's standard input, directory, umask and process group, and ``out_fd`` /
        ``err_fd`` as its standard output and error.  None when it was not started (no fork
        server up yet -- one is asked for --, a script, an environment :func:`env_allows`
        refuses, any error): the caller starts it the usual way.  Never raises."""
        exe = cmd[0]
        if os.sep not in exe or not env_allows(env):
            return None
        ident = _identity(exe)
        if ident is None:
            return None
        sock = self._paths.get(ident, "")
        if sock == "":
            sock = socket_path(self.base, exe) if is_elf(exe) else None
            self._paths[ident] = sock
        if sock is None:
            return None
        import socket
        import struct
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            _connect(conn, sock)
        except OSError:
            conn.close()
            import time
            if time.monotonic() - self._asked.get(sock, -ASK_AGAIN_S) >= ASK_AGAIN_S:
                self._asked[sock] = time.monotonic()
                try:
                    self.ask(os.fsencode(exe) + b"\0" + os.fsencode(sock))
                except OSError:
                    pass
            return None
        mask = os.umask(0o022)
        os.umask(mask)
        payload = b"%d\0%d\0" % (mask, os.getpgrp()) + encode_command(cmd, env)
        cwd = -1
        try:
            cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            conn.sendmsg([b"APF1" + struct.pack("<I", len(payload))],
                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("4i", 0, out_fd, err_fd, cwd))])
            conn.sendall(payload)
        except OSError:
            conn.close()
            return None
        finally:
            if cwd >= 0:
                os.close(cwd)
        conn.settimeout(START_TIMEOUT_S)
        pending = bytearray()
        line = _line(conn, pending)
        if line[:1] != b"P":
            conn.close()
            return None  # ("F<errno>": nothing ran; nothing at all: a fork server stopped or hung)
        conn.settimeout(None)
        try:
            return Forked(conn, int(line[1:]), pending)
        except ValueError:
            conn.close()
            return None


_ELF: dict[str, bool] = {}


def is_elf(path: str) -> bool:
    """True when ``path`` (resolved) is an ELF file, not a script (``#!``), which would run its
    interpreter (and may run the real compiler as its child); remembered per process by path."""
    known = _ELF.get(path)
    if known is None:
        try:
            with open(path, "rb") as f:
                known = f.read(4) == b"\x7fELF"
        except OSError:
            known = False
        _ELF[path] = known
    return known
