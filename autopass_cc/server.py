"""The compile server: a warm Python process whose forked workers serve the compiler calls.

Why.  Measured on interp-cmake (a TU of ~50 ms with clang-19 -O3, this machine): a cache hit through
the ``python -S`` launcher costs ~26 ms, of which ~20 ms is starting Python and importing our hot
path; the same hit in an already-started process costs ~3 ms, and ~5.6 ms in a child forked from
it.  ccache avoids the problem by being written in C; sccache by a client/server split.  We keep
one implementation of the hot path (wrapper.py) and take sccache's split, with one difference:
calls are served by workers *forked* from the warm server (a zygote; SPARES idle ones wait in
accept()), and a worker runs ``wrapper.main`` as a fresh process would -- same argv, environment,
working directory, umask and standard streams (passed over the socket with SCM_RIGHTS) -- so
every behaviour, counter and fault path is the one the standalone wrapper has.  A worker serves
call after call in its own process (:func:`_serve_here`; a pass-through's compiler is handed
back to the client, which exec-s it as the standalone wrapper would have), each with the
client's context and then its own again; a call that would change what outlives it (another
nice value or resource limits) gets the worker to itself, which then ends with it, as a process
forked per call did (:func:`_child`).  Measured
(benchmarks/percall.py, CPU of every process per call): a miss +9.4 ms over clang with a fork per
call, +4.4 ms with workers; a hit 8.7 -> 3.1 ms.

The client (``client.c``, compiled by install.sh into the ``autopass-cc`` / ``autopass-c++``
console scripts) connects to ``<dir>/<tag>.sock``; when no server answers it starts one (this
module, detached) and runs the standalone Python wrapper for that call, so a build never waits
for a server and never depends on one.

Protocol (one connection per call, Unix stream socket, peers of the same uid only):

* client -> server: ``b"APC2"`` (``b"APC1"``: a client that cannot take ``X``) + payload
  length (4 bytes, little endian), sent with the client's file descriptors 0, 1, 2 attached
  (SCM_RIGHTS); then the payload, NUL-terminated fields: cwd, umask (decimal), st_dev and st_ino
  of ``/`` and of the cwd (decimal), argc, argv..., then the environment ``KEY=VALUE`` entries to
  the end;
* server -> client: ``P<pid>\\n`` once a worker has taken the call (the client forwards
  SIGINT/SIGTERM/SIGHUP/SIGQUIT to that process group until the call has ended), then ``S<wait
  status>\\n`` when it has ended (raw ``waitpid`` status: exit code or signal), or ``R\\n``
  (nothing ran: run the standalone wrapper), or, after ``P``, ``X<length>\\n`` and that many bytes:
  argc, argv..., then ``KEY=VALUE`` environment entries, each NUL-terminated -- the client exec-s
  that command in place of itself (a pass-through: the real compiler then is the process the build
  started, its status, signals and streams its own; it saves a spawn, a wait and a status relay per
  call).  A status before any ``P`` also means nothing ran.  The worker sends the status itself;
  the server sends it only for a worker that died in the call (or became the call's own process and
  ended).  A compile that succeeded is reported as soon as its object is written and read back; the
  worker then stores it in the object cache off the build's critical path, holding a lock that
  lookups of the same TU and ``stats`` wait on (objcache.hold_save), released when the call ends.
  Before that status the worker lets go of the caller's standard streams (a build tool reading them
  through a pipe waits for EOF); right after it, it lowers its priority to nice 19, taken back
  after the store (where coming back would need a privilege this process lacks, it keeps its
  priority: :func:`_lower_priority`).
* worker -> server, over a SEQPACKET control socket: ``<pid>`` with a copy of the client's
  connection (a call taken), ``D<pid>`` (done, free for the next), ``E<pid>`` (done, ending),
  ``F<executable>\0<socket path>`` (start a fork server of that compiler: forkserver.py; the
  server's children, they end with it).

While a spare waits, it opens the cache the latest calls used (store.open_ahead;
``<tag>.sock.cache`` names it when a call used another than the server's own), so the call
finds its SQLite connections open (~1.5 ms less per call) and no call's close is the last one
(which would checkpoint and delete the -wal and -shm that the next call re-creates).

The child refuses a call (nothing run, the client falls back) when its ``/`` or the cwd is not the
same file as the client's (another mount namespace, a chroot).  The server stops when idle for
``AUTOPASS_SERVER_IDLE`` seconds (default 600, sccache's default idle timeout), on SIGTERM
(``autopass-cc server stop``), and within a second after a call when any of its Python source files
has changed on disk (an upgrade or an edit: a later call starts a fresh server).  Known difference
from a fresh process: a compile's CPU affinity and cgroup are the server's, not the client's (as
with sccache; a pass-through's compiler, exec-ed by the client, has the client's); the nice value
and resource limits are the client's where this process may take them (:func:`_as_client`: not a
lower nice value or a higher hard limit than the server's, without privilege).
``AUTOPASS_SERVER=0`` turns the server off.
"""

from __future__ import annotations

import os
import sys

MAGIC = b"APC1"
#: The header of a client that takes ``X`` (hand-back) replies.
MAGIC2 = b"APC2"
#: Seconds between two checks of our source files' mtimes (code_stamp) after calls.
CODE_CHECK_S = 1.0
#: Seconds without a call before the server exits (sccache's SCCACHE_IDLE_TIMEOUT default).
IDLE_S = 600.0
#: Modules a compile may import, loaded once in the server so children start warm.
PRELOAD = ("autopass_cc.wrapper", "autopass_cc.invocation", "autopass_cc.cachekey", "autopass_cc.store",
           "autopass_cc.objcache", "autopass_cc.emit", "autopass_cc.config", "autopass_cc.toolchain",
           "autopass_cc.buildlog", "autopass_cc.pipeline", "autopass_cc.errors", "autopass_cc.onestep",
           "autopass_cc.forkserver", "socket", "struct",
           "subprocess", "sqlite3", "hashlib", "marshal", "select", "json", "tomllib", "fcntl", "resource",
    "_sha1", "_sha256", "_blake2")


def default_dir() -> str:
    """Directory of the server sockets: ``$AUTOPASS_SERVER_DIR``, else ``/tmp/autopass-cc-<uid>``
    (mode 0700; the client checks it is ours).  Must match client.c."""
    return os.environ.get("AUTOPASS_SERVER_DIR") or f"/tmp/autopass-cc-{os.getuid()}"


def code_files() -> list[str]:
    """The autopass_cc source files loaded in this process (what :func:`code_stamp` watches)."""
    return sorted({f for name, mod in list(sys.modules.items())
                   if (name == "autopass_cc" or name.startswith("autopass_cc."))
                   and (f := getattr(mod, "__file__", None))})


def code_stamp(files: list[str]) -> int:
    """Newest mtime (ns) of ``files`` (-1 when one is gone): a server whose code changed on disk
    stops (an upgrade or an edit takes effect from the call after the change)."""
    newest = 0
    for f in files:
        try:
            newest = max(newest, os.stat(f).st_mtime_ns)
        except OSError:
            return -1
    return newest


def fallback_argv(argv: list[str]) -> list[str]:
    """The standalone wrapper for ``argv`` (argv[0] included): this interpreter, isolated (-I: no
    cwd or PYTHON* variables on the import path), without site (-S), our package paths first."""
    paths = [p for p in sys.path if p]
    code = (f"import sys;sys.path[0:0]={paths!r};from autopass_cc.wrapper import main;"
            "sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-I", "-S", "-c", code] + list(argv)


class _Request:
    """One parsed call: ``cwd``, ``umask``, ``root_id``/``cwd_id`` (st_dev, st_ino), ``argv``,
    ``env``.  Raises ValueError on a malformed payload."""

    def __init__(self, payload: bytes):
        fields = payload.split(b"\0")
        if fields and fields[-1] == b"":
            fields.pop()
        cwd, umask, rdev, rino, cdev, cino, argc = fields[:7]
        n = int(argc)
        if n < 1 or len(fields) < 7 + n:
            raise ValueError("bad argc")
        dec = os.fsdecode
        self.cwd = dec(cwd)
        self.umask = int(umask)
        self.root_id = (int(rdev), int(rino))
        self.cwd_id = (int(cdev), int(cino))
        self.argv = [dec(a) for a in fields[7:7 + n]]
        self.proto = 1  # (set by _read_call: 2 when the client takes X replies)
        self.env = {}
        for item in fields[7 + n:]:
            k, sep, v = item.partition(b"=")
            if sep and k:
                self.env[dec(k)] = dec(v)


def _recv_request(conn):
    """Read one request: ``(payload bytes, [fd0, fd1, fd2], protocol version 1 or 2)``.  Raises
    ValueError/OSError."""
    import array
    import socket
    fds = array.array("i")
    msg, anc, _flags, _addr = conn.recvmsg(8, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    got = list(fds)
    while len(msg) < 8:
        more = conn.recv(8 - len(msg))
        if not more:
            raise ValueError("short header")
        msg += more
    if msg[:4] not in (MAGIC, MAGIC2) or len(got) != 3:
        for fd in got:
            os.close(fd)
        raise ValueError("bad header")
    size = int.from_bytes(msg[4:8], "little")
    chunks, left = [], size
    while left > 0:
        b = conn.recv(min(left, 1 << 20))
        if not b:
            raise ValueError("short payload")
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks), got, 2 if msg[:4] == MAGIC2 else 1


#: Resource limits a served call takes from its client (getrlimit(2)); the rest are per user.
CLIENT_LIMITS = ("RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
                 "RLIMIT_NOFILE", "RLIMIT_AS")


def _as_client(peer: int) -> None:
    """Give this process the nice value and resource limits of the client process ``peer`` (its
    pid from SO_PEERCRED), as a fresh process started by the build would have: ``nice make``
    or ``ulimit -v`` reach the compiler.  Read with getpriority(2) and prlimit(2) (same uid), set
    only where they differ; one we may not set (a lower nice value, a higher hard limit, without
    privilege) stays the server's.  Never raises."""
    if peer <= 0:
        return
    try:
        n = os.getpriority(os.PRIO_PROCESS, peer)
        if n != os.getpriority(os.PRIO_PROCESS, 0):
            os.setpriority(os.PRIO_PROCESS, 0, n)
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return
    for name in CLIENT_LIMITS:
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            want = resource.prlimit(peer, which)
            if want != resource.getrlimit(which):
                resource.setrlimit(which, want)
        except (OSError, ValueError):
            pass


def _child(conn, ahead: str | None = None, hint: str | None = None, peer: int = 0) -> None:
    """In the forked child: take the call over and run it as the standalone wrapper would.
    Never returns: exits with the wrapper's code, or becomes the real compiler (exec).
    ``ahead``: the cache directory this spare opened ahead; when the call uses another, it is
    written to the file ``hint`` for the spares that follow (:func:`_spare`).  ``peer``: the
    client's pid (:func:`_as_client`)."""
    import signal
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    try:
        got = _read_call(conn)
        if got is None:
            conn.sendall(b"R\n")
            os._exit(0)
        req, fds = got
        _enter(req, fds)
        os.setpgid(0, 0)
        _as_client(peer)
        conn.settimeout(None)
        conn.sendall(b"P%d\n" % os.getpid())
    except Exception:
        os._exit(1)  # nothing ran; the client sees a status before any P and falls back
    from . import wrapper
    if hint:
        _note_cache(ahead, hint)

    def detach(rc: int) -> None:
        """The client exits with ``rc`` now (a compile done, its results still being stored).
        This process lets go of the caller's standard streams first: a build tool that reads a
        command's output through a pipe (Ninja, ``make -O``, CMake's try_compile, Python's
        ``communicate``) sees the command end at EOF, when every copy of the pipe is closed --
        measured under Ninja: holding them through the background store delayed the next
        compile by the store's 2-3 ms.  (What the background part would print, nobody reads.)"""
        _flush()
        _to_devnull()
        try:
            conn.send(b"S%d\n" % ((rc & 0xFF) << 8))
        except OSError:
            pass
        conn.close()
        try:
            # What remains is background work: at the lowest priority, the client (woken on
            # this CPU) runs at once.  Measured: it otherwise waited 1-2.3 ms for this process's
            # time slice (its exit after a miss: 1.0-2.3 ms -> 0.06 ms).  Lowered after the send,
            # not before: at nice 19 on a busy machine, the send itself waited for a CPU.
            os.nice(19)
        except OSError:
            pass
    wrapper.DETACH = detach
    try:
        rc = wrapper.main(req.argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # never break a build: the standalone wrapper runs the call again
        wrapper.warn(f"internal error in the compile server ({type(e).__name__}: {e}); running standalone")
        env = dict(os.environ, AUTOPASS_SERVER="0")
        wrapper.close_stores(leaving=True)
        try:
            os.execve(sys.executable, fallback_argv(req.argv), env)
        except OSError:
            rc = 127
    wrapper.close_stores(leaving=True)  # os._exit skips finalizers: SQLite's log is tidied on close
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(rc if isinstance(rc, int) and 0 <= rc < 256 else 1)


def _note_cache(ahead: str | None, hint: str) -> None:
    """Write this call's cache directory to ``hint`` (atomically) when it is not ``ahead``, the
    one its spare opened: the spares forked from now on open that one (a build whose cache is
    not the server's own, e.g. one AUTOPASS_CACHE_DIR per tree).  Failing is harmless."""
    from .config import cache_dir
    try:
        cache = cache_dir()
        if cache == ahead:
            return
        tmp = f"{hint}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(cache)
        os.replace(tmp, hint)
    except (OSError, ValueError):
        pass


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _cache_to_open(hint: str, default: str) -> str:
    """The cache directory a spare opens ahead: the last one :func:`_note_cache` wrote, else
    ``default`` (the server's own)."""
    try:
        with open(hint, encoding="utf-8", errors="surrogateescape") as f:
            return f.read() or default
    except (OSError, ValueError):
        return default


#: Seconds a fork server must have run for another to be started on its socket once it ends
#: (forkserver.py); one that ended sooner did not come up.
FORK_SERVER_RETRY_S = 10.0

#: Children forked ahead of time, each waiting in accept(): a call does not wait for a fork
#: (measured here: accept -> child ready took 2.2 ms when forking per call, of a ~5 ms overhead).
SPARES = 2
#: Spares failing before their first call within 10 s that make the server stop (its clients
#: then fall back to the standalone wrapper).
SPARES_FAILING = 8
#: Calls one worker serves in its own process before it ends (the server forks a fresh one):
#: bounds what a long-lived process may accumulate.
WORKER_CALLS = 1000


def _spare(listener, ctl, path: str, ident: int) -> None:
    """A pre-forked worker: take the next connection, hand a copy of it to the server (so the
    server can report how the call ends if this process dies), serve it, and wait for the next.
    Never returns.  Ends without a call when the server is gone (EOF on ``ctl``) or stopping
    (``path`` no longer names the listener whose inode is ``ident``; checked twice a second).

    Why several calls per process: measured on a cold build's compile (one TU, this machine), a
    child forked per call spent ~3.2 ms of CPU before its call (fork, copy-on-write faults,
    opening the cache's databases) and ~5.2 ms in it; served by a warm worker the call costs
    less (see :func:`_serve_here`), which is what a parallel build whose jobs fill every core
    pays for.  A call runs in this process when nothing it would change stays changed after it
    (:func:`_like_client`: the client's nice value and resource limits are already ours); else
    this process becomes that call's own, as a fork per call did (:func:`_child`)."""
    import signal
    import socket
    import struct
    from . import config, store
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.setpgid(0, 0)  # the group a client forwards its signals to (P<pid>): this process and its compiler
    except OSError:
        pass
    cred = struct.Struct("3i")
    me = os.getuid()
    import select

    def end() -> None:
        store.close_all()
        os._exit(0)
    # The cache to open ahead: the one the latest calls used (hint), else the server's own.
    default, hint = config.cache_dir(), path + ".cache"
    seen = _mtime(hint)  # (before reading it: a change in between is seen at the next tick)
    cache = _cache_to_open(hint, default)
    ahead = store.open_ahead(cache)
    from . import emit, forkserver
    emit.FORK_SERVERS = forkserver.Client(path, lambda request: ctl.send(b"F" + request))
    listener.setblocking(False)  # several workers wake for one connection; one gets it
    served = 0
    while True:
        try:
            ready, _, _ = select.select([listener, ctl], [], [], 0.5)
        except InterruptedError:
            continue
        except (OSError, ValueError):
            end()
        if ctl in ready:
            end()  # the server is gone (its end of the control socket closed)
        if not ready:
            try:
                if os.stat(path).st_ino != ident:
                    end()
            except OSError:
                end()
            stamp = _mtime(hint)
            if stamp != seen:  # a call used another cache since
                seen, cache = stamp, _cache_to_open(hint, default)
                store.close_ahead()
                ahead = False
            ahead = ahead or store.open_ahead(cache)  # e.g. the first call has created it since
            continue
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            end()  # the listener was shut down: the server is stopping
        try:
            peer, uid, _gid = cred.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, cred.size))
        except OSError:
            uid = -1
        if uid != me:
            conn.close()
            continue
        try:
            ctl.sendmsg([b"%d" % os.getpid()],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", conn.fileno()))])
        except OSError:
            # The server cannot report how this call ends: the client runs the standalone wrapper.
            try:
                conn.send(b"R\n")
            except OSError:
                pass
            end()
        if served >= WORKER_CALLS or not _like_client(peer):
            from . import emit
            emit.FORK_SERVERS = None  # its compiles take the client's nice value and limits; a fork server's are ours
            listener.close()
            ctl.close()
            _child(conn, cache, hint, peer)  # never returns
        keep = _serve_here(conn, cache, hint)
        served += 1
        try:
            ctl.send(b"%s%d" % (b"D" if keep else b"E", os.getpid()))
        except OSError:
            end()
        if not keep:
            end()
        ahead = store.open_ahead(cache)  # (the call's own databases are kept open: store.park)


def _like_client(peer: int) -> bool:
    """True when the client process ``peer`` has this process's nice value and resource limits
    (the ones :func:`_as_client` would give it), so that serving its call here changes nothing
    that lasts beyond the call.  False when they differ or cannot be read."""
    if peer <= 0:
        return False
    try:
        if os.getpriority(os.PRIO_PROCESS, peer) != os.getpriority(os.PRIO_PROCESS, 0):
            return False
        import resource
        for name in CLIENT_LIMITS:
            which = getattr(resource, name, None)
            if which is not None and resource.prlimit(peer, which) != resource.getrlimit(which):
                return False
    except (OSError, ValueError, ImportError):
        return False
    return True


def _spawn_real(compiler: str, argv: list[str], env: dict, forkable: bool = False) -> int:
    """``wrapper.RUN_REAL`` in a worker: run the real compiler as a child with this call's
    standard streams, directory and process group (the client forwards its signals there), wait,
    and keep the raw wait status in ``wrapper.RAW_STATUS`` for the client.  Returns the exit code."""
    import signal
    from . import wrapper
    try:
        pid = os.posix_spawn(compiler, argv, env,
                             setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
                                        signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD))
    except OSError as e:
        wrapper.warn(f"cannot run {compiler}: {e}")
        return 127
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    wrapper.RAW_STATUS = status
    return os.waitstatus_to_exitcode(status)


def _serve_here(conn, ahead: str | None, hint: str | None) -> bool:
    """Serve one call in this worker process, as :func:`_child` would in a process of its own:
    the client's directory, umask, environment and standard streams for the call, then this
    process's own again.  A pass-through's compiler goes back to a client that takes ``X``
    (protocol 2), which exec-s it; for an older client it runs as this process's child
    (:func:`_spawn_real`).  The call's status goes to the client from here.  Returns True when
    this process may serve another call: False when the call left something behind that a next call must not
    inherit -- a module imported (the link hook's tuning session), a stream that could not be
    flushed, a database connection abandoned (store.park), a priority it could not take back.
    Exits (nothing ran: the client falls back) on a malformed request."""
    from . import store, wrapper
    modules = len(sys.modules)
    mask = os.umask(0o022)
    os.umask(mask)
    try:
        got = _read_call(conn)
        if got is None:
            conn.sendall(b"R\n")
            conn.close()
            return True
        req, fds = got
        _enter(req, fds)
        conn.settimeout(None)
        conn.sendall(b"P%d\n" % os.getpid())
    except Exception:
        os._exit(1)  # nothing ran (or half set up): the server reports a status before any P
    if hint:
        _note_cache(ahead, hint)
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # gettempdir() is cached per process; TMPDIR is per call
    state = {"detached": False, "niced": None, "flushed": True}
    keep = True

    def detach(rc: int) -> None:
        """As in :func:`_child`: the client exits with ``rc`` now; this process lets go of the
        caller's streams and stores the compile's results at the lowest priority."""
        state["flushed"] = _flush()
        _to_devnull()
        try:
            conn.send(b"S%d\n" % ((rc & 0xFF) << 8))
        except OSError:
            pass
        conn.close()
        # Lowered only now: at nice 19 before the send, this process waited for a CPU to send it
        # (measured on a loaded machine, the status reached the client 1.4 ms later at the 75th
        # percentile; 0.07 ms when sent first).  Lowering it reschedules (a running task whose
        # priority drops yields to the client woken on its CPU), so the client still runs at once.
        state["niced"] = _lower_priority()
        state["detached"] = True
        if state["niced"] is None:
            os.sched_yield()  # (the client, woken on this CPU, may run first)
    handed: list[bytes] = []

    def hand_back(compiler: str, argv: list[str], env: dict, forkable: bool = False) -> int:
        """``wrapper.RUN_REAL`` for a client that takes ``X``: the command goes back to the client,
        which exec-s it (``wrapper._exec_real`` is always the call's last step) -- or, where
        ``forkable`` and a fork server of the compiler is up, it runs here as a fork of that, with
        the call's standard streams, and its wait status goes to the client: a link or a
        configure probe then skips the compiler's start-up as a compile does (forkserver.py).
        If that fork server dies before it reports the status, the command goes back to the
        client after all."""
        if state["detached"] or handed:
            return _spawn_real(compiler, argv, env)
        from . import emit
        if forkable and emit.FORK_SERVERS is not None:
            forked = emit.FORK_SERVERS.run(argv, env, 1, 2)
            status = forked.wait_status() if forked is not None else None
            if status is not None:
                wrapper.RAW_STATUS = status
                return os.waitstatus_to_exitcode(status)
        from .forkserver import encode_command
        handed.append(encode_command(argv, env))
        return 0
    wrapper.DETACH, wrapper.RAW_STATUS = detach, None
    wrapper.RUN_REAL = hand_back if req.proto >= 2 else _spawn_real
    try:
        rc = wrapper.main(req.argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # never break a build: the standalone wrapper runs the call again
        if state["detached"]:
            os._exit(1)  # the client has its status; only the background store is lost
        wrapper.warn(f"internal error in the compile server ({type(e).__name__}: {e}); running standalone")
        env = dict(os.environ, AUTOPASS_SERVER="0")
        try:
            os.execve(sys.executable, fallback_argv(req.argv), env)
        except OSError:
            os._exit(127)
    while wrapper.HELD_LOCKS:  # the background store is done: lookups of its TU may go on
        os.close(wrapper.HELD_LOCKS.pop())
    status = wrapper.RAW_STATUS
    if status is None:
        status = ((rc if isinstance(rc, int) and 0 <= rc < 256 else 1) & 0xFF) << 8
    wrapper.DETACH, wrapper.RUN_REAL, wrapper.RAW_STATUS = None, None, None
    if not state["detached"]:
        keep = _flush()
        try:
            conn.sendall(b"X%d\n" % len(handed[0]) + handed[0] if handed else b"S%d\n" % status)
        except OSError:
            pass
        conn.close()
        _to_devnull()
    if state["niced"] is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, state["niced"])
        except OSError:
            keep = False  # (lowering a nice value needs privilege): a fresh worker serves the next
    os.chdir("/")
    os.umask(mask)
    return store.park() and keep and state["flushed"] and len(sys.modules) == modules


def _lower_priority() -> int | None:
    """Go to nice 19 for a call's background work when this process may come back afterwards
    (root, or RLIMIT_NICE allows it: setpriority(2)); returns the nice value to come back to,
    or None (priority unchanged).  Why: measured with a process per call, a client woken on the
    CPU of a background store waited 1.0-2.3 ms for that store's time slice; at nice 19, 0.06 ms."""
    try:
        now = os.getpriority(os.PRIO_PROCESS, 0)
        if now >= 19:
            return None
        if os.geteuid() != 0:
            import resource
            if resource.getrlimit(resource.RLIMIT_NICE)[0] < 20 - now:
                return None
        os.setpriority(os.PRIO_PROCESS, 0, 19)
        return now
    except (OSError, ValueError, ImportError, AttributeError):
        return None


def _read_call(conn):
    """Read the request on ``conn`` (10 s at most): ``(_Request, [fd0, fd1, fd2])``, or None when
    this process's ``/`` or the client's directory is not the same file as the client's (another
    mount namespace, a chroot: the call must not run here; its descriptors are closed).  Raises
    ValueError/OSError on a malformed or short request."""
    conn.settimeout(10.0)
    payload, fds, proto = _recv_request(conn)
    req = _Request(payload)
    req.proto = proto
    st_root, st_cwd = os.stat("/"), os.stat(req.cwd)
    if (st_root.st_dev, st_root.st_ino) != req.root_id or (st_cwd.st_dev, st_cwd.st_ino) != req.cwd_id:
        for fd in fds:
            os.close(fd)
        return None
    return req, fds


def _enter(req: _Request, fds: list[int]) -> None:
    """Take the client's context for its call: directory, umask, environment (putenv only where
    it differs: ~5 us each), and its standard streams as descriptors 0-2.  Raises OSError."""
    os.chdir(req.cwd)
    os.umask(req.umask)
    for k in [k for k in os.environ if k not in req.env]:
        del os.environ[k]
    for k, v in req.env.items():
        if os.environ.get(k) != v:
            os.environ[k] = v
    for i, fd in enumerate(fds):
        os.dup2(fd, i)
        os.close(fd)


def _flush() -> bool:
    """Flush sys.stdout and sys.stderr; False when either failed (its buffer may still hold this
    call's output, which must not reach the next call's streams)."""
    ok = True
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            ok = False
    return ok


def _to_devnull() -> None:
    """Point descriptors 0-2 at /dev/null (a caller's pipe must see EOF when its call ends)."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass


def serve(path: str, idle_s: float = IDLE_S) -> int:
    """Listen on the Unix socket ``path`` until idle for ``idle_s`` seconds, SIGTERM, or a change
    of our source files, with SPARES children waiting in accept().  One server per path: a
    second one exits at once (flock on ``path + ".lock"``).  Returns 0."""
    import array
    import fcntl
    import gc
    import importlib
    import select
    import signal
    import socket
    import time

    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another server has (or is taking) this socket
    os.chdir("/")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    files = code_files()
    stamp = code_stamp(files)
    checked, recheck = 0.0, False
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(128)
    ident = os.stat(path).st_ino
    with open(path + ".pid", "w") as f:
        f.write(f"{os.getpid()}\n")
    # SEQPACKET: whole messages (with a descriptor each), and the spares see EOF if we die.
    ctl, ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    rd, wr = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wr)
    stopping: list[str] = []
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: stopping.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stopping.append("SIGINT"))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    gc.freeze()  # children share the warm heap copy-on-write; collections would dirty it
    spares: set[int] = set()
    busy: dict[int, socket.socket] = {}     # pid -> the client's connection
    ended: dict[int, int] = {}              # pid -> wait status, for a child reaped before its message
    last = time.monotonic()

    def fork_spare() -> None:
        try:
            pid = os.fork()
        except OSError:
            return
        if pid == 0:
            try:
                signal.set_wakeup_fd(-1)
                for fd in (rd, wr, lock):
                    os.close(fd)
                ctl.close()
                for c in busy.values():
                    c.close()
                _spare(listener, ctl_child, path, ident)  # never returns
            finally:
                os._exit(1)  # (a spare that failed: never the server's loop in this process)
        spares.add(pid)

    fork_servers: dict[int, tuple] = {}  # pid -> (socket path, time started), of the fork servers started
    started: set[str] = set()            # socket paths a fork server was started for

    def start_fork_server(msg: bytes) -> None:
        """A worker asks for a fork server (forkserver.py): ``<executable>\\0<socket path>``.
        One start per socket path, again only after one that ran FORK_SERVER_RETRY_S or longer
        has ended (idle): one that did not come up (the library did not take hold) is not
        started again."""
        exe, _, sock = msg.partition(b"\0")
        exe, sock = os.fsdecode(exe), os.fsdecode(sock)
        if not exe or os.path.dirname(sock) != os.path.dirname(path) or sock in started or stopping:
            return
        started.add(sock)
        from . import forkserver
        try:
            fork_servers[forkserver.start(sock, exe, idle_s)] = (sock, time.monotonic())
        except OSError:
            pass

    def report(conn, status: int) -> None:
        try:
            conn.send(b"S%d\n" % status)
        except OSError:
            pass
        conn.close()

    def close_listener(reason: str) -> None:
        stopping.append(reason)
        if listener.fileno() < 0:
            return
        try:
            if os.stat(path).st_ino == ident:
                os.unlink(path)
        except OSError:
            pass
        listener.close()  # spares see the path gone and end; one that took a call finishes it
        os.close(lock)  # a new server may start while this one finishes its calls in flight

    def drain() -> bool:
        """Read the workers' messages: ``<pid>`` with the client's connection (it took a call),
        ``D<pid>`` (done, free again), ``E<pid>`` (done, ending).  True when a call was taken."""
        nonlocal last
        took = False
        while True:
            fds = array.array("i")
            try:
                msg, anc, _f, _a = ctl.recvmsg(8192, socket.CMSG_SPACE(fds.itemsize), socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return took
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            if msg[:1] == b"F":
                start_fork_server(msg[1:])
                continue
            if msg[:1] in (b"D", b"E"):
                # The client has its status from the worker itself.
                try:
                    pid = int(msg[1:])
                except ValueError:
                    continue
                c = busy.pop(pid, None)
                if c is not None:
                    c.close()
                between.add(pid)
                if msg[:1] == b"D":
                    spares.add(pid)
                continue
            try:
                pid = int(msg)
            except ValueError:
                for fd in fds:
                    os.close(fd)
                continue
            spares.discard(pid)
            between.discard(pid)
            last = time.monotonic()
            took = True
            if not fds:
                continue
            conn = socket.socket(fileno=fds[0])
            if pid in ended:
                report(conn, ended.pop(pid))
            else:
                busy[pid] = conn

    between: set[int] = set()  # workers between two calls (their last message was D or E)
    failed: list[float] = []   # when spares ended in error before a call, over the last 10 s
    while True:
        took = drain()
        # Children that ended.
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            fs = fork_servers.pop(pid, None)
            if fs is not None:
                if time.monotonic() - fs[1] >= FORK_SERVER_RETRY_S:
                    started.discard(fs[0])
                continue
            if pid not in busy:
                took = drain() or took  # a message it sent before it ended is queued by now
            if pid in busy:
                report(busy.pop(pid), status)
            elif pid in between:
                between.discard(pid)
                spares.discard(pid)
            else:
                # A spare that ended without a call (stopped): kept until a message claims it.
                spares.discard(pid)
                ended[pid] = status
                if status != 0:  # it failed before its first call (a spare that stops exits 0)
                    now = time.monotonic()
                    failed[:] = [t for t in failed if now - t < 10.0] + [now]
                    if len(failed) >= SPARES_FAILING and not stopping:
                        # Spares die as they start (e.g. a broken install): stop listening, so
                        # that waiting clients see the socket close and run the standalone wrapper
                        # instead of waiting for a worker that never comes.
                        stopping.append("workers fail to start")
        if stopping:
            close_listener(stopping[0])
            if not busy and not spares:
                break
        else:
            idle = idle_s - (time.monotonic() - last)
            if not busy and idle <= 0:
                close_listener("idle")
                continue
            while len(spares) < SPARES:
                fork_spare()
            # Off the calls' path, after the fork, at most once a second (a check costs ~0.07 ms,
            # and every call sends two messages) and at most a second after the call.
            recheck = recheck or took
            if recheck and time.monotonic() - checked >= CODE_CHECK_S:
                recheck, checked = False, time.monotonic()
                if code_stamp(files) != stamp:
                    close_listener("code changed")
        wait = None if (busy or stopping) else max(idle, 0.01)
        if recheck and not stopping:
            wait = max(0.01, min(wait if wait is not None else CODE_CHECK_S, checked + CODE_CHECK_S - time.monotonic()))
        ready, _, _ = select.select([rd, ctl], [], [], wait)
        if rd in ready:
            try:
                while os.read(rd, 4096):
                    pass
            except BlockingIOError:
                pass
    try:
        # A newer server may have started once close_listener let go of the lock: its pid file
        # is not ours to remove.
        with open(path + ".pid") as f:
            mine = f.read().strip() == str(os.getpid())
        if mine:
            os.unlink(path + ".pid")
    except OSError:
        pass
    return 0


def main() -> int:
    """``python -I -S -c '...server.main()' SOCKET``: started detached by the client."""
    if len(sys.argv) < 2:
        sys.stderr.write("usage: autopass_cc.server SOCKET\n")
        return 2
    try:
        idle = float(os.environ.get("AUTOPASS_SERVER_IDLE", IDLE_S))
    except ValueError:
        idle = IDLE_S
    return serve(sys.argv[1], idle)


def _alive(pid: int) -> bool:
    """``pid`` is a live (not zombie) compile server: checked in /proc, since a detached server's
    parent may be an init that does not reap, and a stale pid file's number may be reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"autopass_cc.server" in f.read()
    except (OSError, IndexError):
        return False


def running(directory: str | None = None) -> list[dict]:
    """Servers with a live pid file in ``directory``: ``[{"socket", "pid"}]``."""
    d = directory or default_dir()
    out = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".sock.pid"):
            continue
        try:
            with open(os.path.join(d, name)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            continue
        out.append({"socket": os.path.join(d, name[:-4]), "pid": pid})
    return out


def stop(directory: str | None = None, timeout_s: float = 10.0) -> int:
    """SIGTERM every running server in ``directory`` and wait (up to ``timeout_s`` seconds) for
    them to finish their calls in flight.  Returns how many were stopped."""
    import signal
    import time
    servers = running(directory)
    for s in servers:
        try:
            os.kill(s["pid"], signal.SIGTERM)
        except OSError:
            pass
    end = time.monotonic() + timeout_s
    for s in servers:
        while time.monotonic() < end and _alive(s["pid"]):
            time.sleep(0.02)
    return len(servers)
