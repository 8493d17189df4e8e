"""The hot path: argv -> exit code.  One process per compiler call.

``autopass-cc ARGS`` behaves as ``clang-19 ARGS``; ``autopass-c++`` as ``clang++-19``.  Three ways in:

* direct: ``CC=autopass-cc make``;
* launcher: ``autopass-cc clang-19 ARGS`` (``CMAKE_C_COMPILER_LAUNCHER=autopass-cc``);
* masquerade: a link named ``cc``/``clang``/``c++``/``clang++`` to us, first in PATH.

Management subcommands (``init``, ``tune``, ``stats``, ``explain``, ``cache``, ``demo``, ``doctor``,
``help``) are chosen when the first argument is one of those words; everything else is a compiler
call.  Only a compile of one C/C++ TU to an object is intercepted (invocation.py); anything else is
``exec``-ed unchanged, so its exit code, output and files are exactly clang's.

The single fall-back guard (ARCHITECTURE.md decision 3): any internal error, a locked or corrupt
cache, a bad config, a tuned pipeline that no longer compiles -> one ``autopass-cc:`` line on
stderr, a counter, and the user's own command.  Pass-throughs never print anything (configure
probes may treat any stderr as failure).

This module imports neither click, openai nor the tuning code (benchmarks/overhead.py measures it).
"""

from __future__ import annotations

import os
import sys

SUBCOMMANDS = {"init", "tune", "stats", "explain", "cache", "demo", "doctor", "help", "server"}
#: Set only in a child of the compile server (server.py), where the call is counted as served:
#: ``DETACH(exit_code)`` ends the client's wait with that exit code while this process goes on
#: storing the compile's results.
DETACH = None
#: Set only in a compile-server worker that serves several calls in one process (server.py):
#: ``RUN_REAL(compiler, argv, env, forkable) -> exit code`` runs the real compiler in place of ``exec`` and
#: waits for it; the worker reports :data:`RAW_STATUS` (a ``waitpid`` status), which RUN_REAL and
#: :func:`_exit_code` set, to the client instead of the exit code.
RUN_REAL = None
RAW_STATUS = None
#: Lock descriptors a detached call holds until its background work is done (objcache.hold_save):
#: released when the process exits, or by the worker when the call has ended.
HELD_LOCKS: list = []
#: Whether a compile in this process starts clang before it knows the object cache misses
#: (:func:`_start_early`): after a miss yes, after a hit no; a worker serves call after call, and
#: a build's calls come in runs (a cold build misses, a warm rebuild hits).
EARLY_START = [True]
_COMPILER_HINTS = ("clang", "gcc", "cc", "c++", "g++")
#: Environment variable counting nested autopass-cc calls: a "real compiler" that is a script
#: calling autopass-cc again (which is_autopass cannot see) ends with a message, not a loop.
DEPTH_VAR = "AUTOPASS_CC_DEPTH"
MAX_DEPTH = 8


def full_site() -> None:
    """Finish Python's start-up when the launcher ran with ``-S`` (install.sh does, to keep the
    compile hot path fast): process site-packages and .pth files before heavy imports."""
    if sys.flags.no_site:
        import site
        site.main()


def warn(message: str) -> None:
    """Print one ``autopass-cc:`` line on stderr."""
    try:
        sys.stderr.write(f"autopass-cc: {message}\n")
        sys.stderr.flush()
    except OSError:
        pass


def _depth() -> int:
    """How many autopass-cc processes exec-ed their way to this one (``AUTOPASS_CC_DEPTH``)."""
    value = os.environ.get(DEPTH_VAR, "")
    return int(value) if value.isdigit() else 0


def _exec_real(compiler: str, args: list[str], forkable: bool = False) -> int:
    """Replace this process with the real compiler (exact exit code, output and files).  The
    compiler's environment is ours plus the nesting counter (os.environ itself is left alone).
    In a compile-server worker (:data:`RUN_REAL`) the compiler runs elsewhere instead (exec-ed by
    the client, or, where ``forkable``, as a fork of a fork server), and this returns its exit
    code."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    env = {**os.environ, DEPTH_VAR: str(_depth() + 1)}
    if RUN_REAL is not None:
        return RUN_REAL(compiler, [compiler] + list(args), env, forkable)
    close_stores(leaving=True)
    try:
        os.execve(compiler, [compiler] + list(args), env)
    except OSError as e:
        warn(f"cannot run {compiler}: {e}")
        return 127
    return 0  # not reached


def close_stores(leaving: bool = False) -> None:
    """Close the cache's database connections, if this process opened any (store.close_all;
    ``leaving``: this process execs or exits next)."""
    store = sys.modules.get(__package__ + ".store")
    if store is not None:
        try:
            store.close_all(leaving)
        except Exception:
            pass


def _looks_like_compiler(arg: str) -> str | None:
    """Launcher form: the first argument names a compiler executable (``clang-19``, ``/usr/bin/cc``)."""
    if arg.startswith("-") or arg.startswith("@"):
        return None
    base = os.path.basename(arg)
    if not any(h in base for h in _COMPILER_HINTS) or os.path.splitext(base)[1] in (".c", ".cc", ".cpp", ".o", ".a", ".so"):
        return None
    from .toolchain import which_all
    found = which_all(arg)
    path = found[0] if found else None
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return None


class _Counters:
    """Counters and the cache of one process.  The store (store.HotStore: no diskcache import) is
    opened once, only if something needs it; counts are kept in memory and written in one
    transaction by :meth:`flush` (before the process execs or exits).  A count that cannot be
    written to the database (locked, full) goes to ``<cache>/stats.pending`` (store.py), so
    ``stats`` still sees it; beyond that, failing to count never breaks a build."""

    def __init__(self, settings: dict | None):
        self.settings = settings or {}
        self._store = None
        self.unavailable: str | None = None
        self.warned = False

    def store(self):
        if self._store is None and self.unavailable is None:
            from .store import HotStore
            try:
                self._store = HotStore(size_limit=self.settings.get("cache_size"))
            except Exception as e:
                self.unavailable = str(e)
        return self._store

    def incr(self, name: str, n: int = 1) -> None:
        try:
            s = self.store()
            if s is not None:
                s.incr(name, n)
        except Exception:
            pass

    def warn_once(self, message: str) -> None:
        """One ``autopass-cc:`` line per process for cache trouble (ARCHITECTURE.md decision 3)."""
        if not self.warned:
            self.warned = True
            warn(message)

    def flush(self, loud: bool = False) -> None:
        """Write the counts.  ``loud``: say so (once) when they cannot be written."""
        emit = sys.modules.get("autopass_cc.emit")
        if emit is not None and emit.FORKED[0]:  # (compiles started through a fork server)
            self.incr("forked", emit.FORKED[0])
            emit.FORKED[0] = 0
        s = self._store
        if s is None:
            return
        try:
            s.flush()
            return
        except Exception as e:
            from .store import error_kind, release_reserve, save_pending
            kind = error_kind(e)
            s.incr("error:" + kind)
            if kind == "cache-full" and release_reserve(s.directory):
                try:
                    s.flush()
                    return
                except Exception:
                    pass
            save_pending(s.directory, s.pending)
            s.pending = {}
            if loud:
                self.warn_once(f"cache {s.directory} not writable now ({type(e).__name__}: {e}); "
                               "statistics of this compile kept aside")


def main(argv: list[str] | None = None, cplusplus: bool = False) -> int:
    """Entry point of ``autopass-cc`` (``cplusplus=False``) and ``autopass-c++``.  Returns the exit
    code (or never returns, having exec-ed the real compiler)."""
    argv = list(sys.argv if argv is None else argv)
    prog = os.path.basename(argv[0]) if argv else "autopass-cc"
    args = argv[1:]
    masquerade = None
    if not prog.startswith("autopass-c") and not prog.endswith(".py") and not prog.startswith("python"):
        masquerade = prog
        cplusplus = "++" in prog
    elif prog.startswith("autopass-c++"):
        cplusplus = True
    if masquerade is None and args and args[0] in SUBCOMMANDS:
        full_site()
        from .cli import main as cli_main
        return cli_main(args)

    from . import config
    from .errors import AutopassError, CompilerNotFound
    from .toolchain import find_real_compiler, is_autopass

    depth = _depth()
    if depth >= MAX_DEPTH:
        warn(f"autopass-cc called itself {depth} times (the real compiler it runs leads back to "
             "autopass-cc); set AUTOPASS_CC to a real clang (e.g. clang-19)")
        return 127

    explicit = None
    if masquerade is None and args:
        launched = _looks_like_compiler(args[0])
        if launched:
            args = args[1:]
            cplusplus = "++" in os.path.basename(launched)
            if not is_autopass(launched):
                explicit = launched
    cwd = os.getcwd()
    settings = None
    project = None
    try:
        project = config.find_project(cwd)
        settings = config.load(project)
    except AutopassError as e:
        settings = None
        config_error = str(e)
    else:
        config_error = None
    if explicit is None and settings:
        explicit = settings.get("cxx_compiler" if cplusplus else "compiler")
    try:
        compiler = find_real_compiler(cplusplus, explicit=explicit, masquerade_name=masquerade)
    except CompilerNotFound as e:
        warn(str(e))
        return 127
    if os.environ.get("AUTOPASS_DISABLE") == "1":
        return _exec_real(compiler, args)

    counters = _Counters(settings)
    if DETACH is not None:
        counters.incr("served")
    from .invocation import Skip, classify
    try:
        inv = classify(args, cwd, cplusplus=cplusplus)
    except Exception as e:  # a classifier bug must not break a build
        warn(f"internal error classifying the call ({type(e).__name__}: {e}); running the compiler as given")
        counters.incr("error:internal")
        counters.flush()
        return _exec_real(compiler, args)

    if isinstance(inv, Skip):
        if inv.reason == "multiple source files" and os.environ.get("AUTOPASS_SPLIT", "1") != "0":
            try:
                from .onestep import Plan, split_compile
                each = split_compile(args, cwd)
                if each is not None:
                    counters.incr("multi_source_splits")
                    counters.flush()
                    return _compile_each(compiler, Plan(each, None), cwd, cplusplus)
            except Exception as e:  # a bug here must not break the build: the command as given
                warn(f"internal error splitting a multi-source compile ({type(e).__name__}: {e}); running it as given")
                counters.incr("error:internal")
        if inv.is_link and project and settings and os.environ.get("AUTOPASS_SPLIT", "1") != "0":
            try:
                from .onestep import split
                plan = split(args, cwd, project)
                if plan is not None:
                    counters.incr("one_step_links")
                    counters.flush()
                    rc = _compile_each(compiler, plan, cwd, cplusplus)
                    if rc:
                        return rc
                    args = plan.link_args
            except Exception as e:  # a bug here must not break the build: the command as given
                warn(f"internal error splitting a one-step build ({type(e).__name__}: {e}); running it as given")
                counters.incr("error:internal")
        counters.incr("passthrough:" + inv.reason)
        if project and not inv.is_link:
            _record_unrecorded(project, args, cwd)
        if inv.is_link and project and settings:
            try:
                _on_link(compiler, args, cwd, project, settings, counters)
            except Exception as e:
                warn(f"could not record or tune this link ({type(e).__name__}: {e}); linking as asked")
                counters.incr("error:link-hook")
        counters.flush()
        return _exec_real(compiler, args, _forkable_as_given(args, settings))

    if config_error:
        warn(f"{config_error}; compiling with your own flags")
        counters.incr("error:config")
        counters.flush()
        return _exec_real(compiler, args)
    try:
        rc = _intercept(compiler, inv, args, cwd, project, settings, counters, cplusplus)
        if rc is not None:
            counters.flush(loud=True)
            return _exit_code(rc)
    except Exception as e:
        warn(f"internal error ({type(e).__name__}: {e}); compiling with your own flags")
        counters.incr("error:internal")
    counters.flush(loud=True)
    return _exec_real(compiler, args, _forkable_as_given(args, settings))


def lookup(store, key, settings: dict):
    """The Pipeline to use for a CacheKey, with how it was found: ``(pipeline|None, status,
    entry|None)``; status is ``"hit"``, ``"stale"`` (same TU, other content), ``"miss"`` or
    ``"refused"`` (stored pipeline not allowed by the current policy).  Shared with ``explain``."""
    from .errors import PipelineError
    from .pipeline import Pipeline, Policy, validate
    entry, status = store.get_tuned(key.digest), "hit"
    if entry is None:
        entry, status = store.get_by_tu(key.tu_id), "stale"
        if entry is None:
            return None, "miss", None
    try:
        p = validate(Pipeline.from_dict(entry["pipeline"]),
                     Policy(allow_unsafe_math=bool(settings.get("allow_unsafe_math")),
                            allow_native=bool(settings.get("allow_native"))))
    except (PipelineError, KeyError, TypeError):
        return None, "refused", entry
    if status == "stale" and p.may_change_results:
        return None, "miss", entry  # value-changing pipelines were verified on other code
    return p, status, entry


def _exit_code(rc: int) -> int:
    """A negative exit code (clang killed by a signal) is passed on as that signal, as make would
    have seen it from clang itself."""
    if rc < 0 and RUN_REAL is not None:  # a worker reports the signal; it does not die of it
        global RAW_STATUS
        RAW_STATUS = -rc
        return 128 - rc
    if rc < 0:
        import _signal
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            pass
        _signal.signal(-rc, _signal.SIG_DFL)
        os.kill(os.getpid(), -rc)
        return 128 - rc
    return rc


def _write_fd(fd: int, data: bytes) -> None:
    """Write all of ``data`` (replayed compiler output) to a file descriptor."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select
            select.select([], [fd], [])
            continue
        view = view[n:]


def _replay(out: bytes, err: bytes) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    try:
        if out:
            _write_fd(1, out)
        if err:
            _write_fd(2, err)
    except OSError:
        pass


class _ObjectCache:
    """The object cache's part of one compile (objcache.py has the design): plan (refusals, the
    direct key, the manifest record that matches), lookup, and storing a fresh result."""

    def __init__(self, inv, counters, store):
        self.inv, self.counters, self.store = inv, counters, store
        self.direct = self.rec = self.objs = self.base = None
        self.records: list = []
        self.refreshed = False
        self.on = False

    def plan(self, ident: dict, cwd: str, cplusplus: bool, native) -> None:
        from . import cachekey, objcache
        inv = self.inv
        why = cachekey.object_cache_refusal(inv, os.environ)
        if not why and not objcache.writable_target(inv.output):
            why = "output is not a regular file"
        dep = objcache.depfile_path(inv)
        if not why and dep is not None and not objcache.writable_target(dep):
            why = "dependency file is not a regular file"
        src_digest = None
        if not why:
            src_digest, why = objcache.read_source(inv.source)
        if why:
            self._uncacheable(why)
            return
        self.depfile = dep
        self.direct = cachekey.direct_key(inv, ident, cwd, cplusplus=cplusplus, native_cpu=native,
                                          environ=os.environ, source_digest=src_digest)
        try:
            self.objs = self.store.objects()
            objcache.wait_saves(self.objs.directory, self.direct)  # one finishing in a server child
            blob = self.objs.get("man/" + self.direct)
        except Exception as e:
            self._trouble(e)
            return
        self.on = True
        if blob is not None:
            self.records = objcache.unpack_manifest(blob) or []
            if not self.records:
                self.counters.incr("error:corrupt-manifest")
            self.rec, self.refreshed = objcache.match(self.records)

    def _uncacheable(self, why: str) -> None:
        """Count a compile the object cache cannot hold, and why (``stats``: by reason)."""
        from .objcache import reason_label
        self.counters.incr("object_uncacheable")
        self.counters.incr("uncacheable:" + reason_label(why))

    def _trouble(self, e: BaseException) -> None:
        from .store import error_kind
        self.on = False
        self.counters.incr("error:" + error_kind(e))
        self.counters.warn_once(f"object cache unavailable ({type(e).__name__}: {e}); going on without it")

    def lookup(self, pipeline_id: str, tty):
        """The entry ``(obj, dep, out, err)`` to restore, or None."""
        from . import cachekey, objcache
        if not self.on or self.rec is None:
            return None
        key = "obj/" + cachekey.object_key(self.rec["content"], pipeline_id)
        try:
            blob = self.objs.get(key)
        except Exception as e:
            self._trouble(e)
            return None
        if blob is None:
            return None
        entry = objcache.unpack_entry(blob)
        if entry is None or entry[5] != pipeline_id:
            self.counters.incr("error:corrupt-object")
            try:
                self.objs.delete(key)
            except Exception:
                pass
            return None
        obj, dep, out, err, entry_tty, _ = entry
        if err and (entry_tty if entry_tty is None else tuple(entry_tty)) != tty:
            return None  # diagnostics captured for another kind of stderr
        if (dep is None) != (self.depfile is None):
            return None
        return obj, dep, out, err

    def restore(self, entry) -> bool:
        from . import objcache
        obj, dep, _out, _err = entry
        try:
            objcache.restore(self.inv.output, obj)
            if dep is not None:
                objcache.restore(self.depfile, dep)
        except OSError:
            return False
        return True

    def listing_args(self) -> list[str]:
        from . import objcache
        if not self.on:
            return []
        try:
            self.base, args = objcache.new_listing(self.objs.directory, self.inv)
        except OSError as e:
            self._trouble(e)
            return []
        return args

    def cleanup(self) -> None:
        if self.base:
            from .objcache import remove_listing
            remove_listing(self.base)

    def capture(self, start_ns: int):
        """Read what a successful compile wrote: ``(object bytes, depfile bytes or None)``, or None
        when it cannot be cached.  Done before the compile is reported finished: after that, the
        build may move or rewrite the files."""
        from . import objcache
        if not self.on or self.base is None:
            return None
        try:
            with open(self.inv.output, "rb") as f:
                obj = f.read()
            dep = None
            if self.depfile is not None:
                st = os.stat(self.depfile)
                if st.st_mtime_ns < start_ns - objcache.TOO_NEW_NS:
                    return None  # not where we predicted clang writes it
                with open(self.depfile, "rb") as f:
                    dep = f.read()
        except OSError:
            return None
        return obj, dep

    def save(self, captured, out: bytes, err: bytes, tty, pipeline_id: str, tu_key, start_ns: int) -> None:
        """Store a successful compile's results (``captured`` by :meth:`capture`) and its manifest
        record; a result that cannot be cached (objcache.py) is simply not stored.  The files the
        compile read are checked against ``start_ns`` (too new: not cached), so this may run after
        the build has gone on."""
        from . import cachekey, objcache
        if not self.on or self.base is None:
            return
        try:
            paths, why = objcache.read_listing(self.base, self.inv)
        finally:
            self.cleanup()
        files, learnt = None, []
        if paths is not None and captured is not None:
            files, why = objcache.scan(paths, start_ns, self.objs.get_many_inline, learnt)
        if files is None:
            self._uncacheable(why or "object or dependency file not as written")
            return
        obj, dep = captured
        content = cachekey.content_key(self.direct, [(f[0], f[5]) for f in files])
        record = {"files": files, "content": content, "tu_key": tu_key}
        records = [record] + [r for r in self.records if r.get("content") != content]
        try:  # one transaction: the entry, its manifest, the digests learnt
            self.objs.put_many([("obj/" + cachekey.object_key(content, pipeline_id),
                                 objcache.pack_entry(obj, dep, out, err, tty, pipeline_id)),
                                ("man/" + self.direct, objcache.pack_manifest(records))]
                               + [(k, d.encode("ascii")) for k, d in learnt])
        except Exception as e:
            self._trouble(e)

    def detach(self, rc: int) -> None:
        """In a compile-server child (``DETACH`` set): end the client's wait with ``rc`` now; what
        this process still writes (the object, the manifest, the counters) happens under the lock
        that lookups of this TU and ``stats`` wait on (objcache.hold_save).  Elsewhere, nothing."""
        if DETACH is None or not self.on:
            return
        from .objcache import hold_save
        fd = hold_save(self.objs.directory, self.direct)
        if fd is not None:
            HELD_LOCKS.append(fd)
            DETACH(rc)

    def remember(self, tu_key=None, start_ns: int = 0) -> None:
        """After a hit: write the matched record back when its stat data was refreshed (files
        touched, contents the same) or it learnt the exact tuned-pipeline key."""
        from . import objcache
        if not self.on or self.rec is None or not (self.refreshed or (tu_key and not self.rec.get("tu_key"))):
            return
        rec = objcache.refresh(self.rec, start_ns) if self.refreshed else self.rec
        if rec is None:
            return
        rec = {**rec, "tu_key": tu_key or rec.get("tu_key")}
        records = [rec] + [r for r in self.records if r is not self.rec]
        try:
            self.objs.put("man/" + self.direct, objcache.pack_manifest(records))
        except Exception:
            pass


def _intercept(compiler, inv, args, cwd, project, settings, counters, cplusplus=False) -> int | None:
    """Compile one TU: keys, lookups (tuned pipeline, object cache), emit.  Returns an exit code,
    or None to run the user's command (exec)."""
    import time
    from . import cachekey
    from .toolchain import compiler_identity, host_cpu
    start_ns = time.time_ns()
    ident = compiler_identity(compiler)
    if not ident.get("is_clang"):
        counters.incr("passthrough:not clang")
        return None
    store = counters.store()
    early = _start_early(compiler, inv, args, store, settings) if DETACH is not None and store else None
    started = early
    try:
        native = host_cpu(compiler) if inv.uses_native else None
        material = cachekey.codegen_material(inv, ident, cwd, native)
        tu_id = cachekey.tu_identity(inv, material, cwd, project)
        if store is None:
            counters.warn_once(f"{counters.unavailable}; compiling with your own flags")
            _record(project, compiler, inv, args, cwd, None, tu_id, "error", cplusplus)
            return None
        oc = _ObjectCache(inv, counters, store)
        if settings.get("object_cache", True):
            oc.plan(ident, cwd, cplusplus, native)

        # Which pipeline: no entry for this TU identity means no exact key can hit either, so the
        # preprocessor (the dominant cost of a cold build) is skipped; so it is when every entry ever
        # stored for it keeps the user's flags (store.flags_only: most TUs after a session); else the
        # manifest record may know the exact key from an earlier compile of the same inputs.
        pipeline, status, key_digest = None, "miss", None
        if store.flags_only(tu_id):
            status = "hit"  # sessions examined this TU and kept the user's flags: no exact key needed
        elif store.has_tu(tu_id):
            if oc.rec is not None and oc.rec.get("tu_key"):
                key = cachekey.CacheKey(oc.rec["tu_key"], tu_id, None)
            else:
                import subprocess
                pre = subprocess.run([compiler] + cachekey.preprocess_args(inv), cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                if pre.returncode != 0:
                    counters.incr("passthrough:preprocessor error")
                    return None
                key = cachekey.compute(inv, ident, cwd, pre.stdout, native_cpu=native, project=project)
            key_digest = key.digest
            pipeline, status, _ = lookup(store, key, settings)
            if status == "refused":
                counters.incr("error:pipeline-refused")
                counters.warn_once(f"the cached pipeline for {inv.source} is not allowed by the current settings "
                                   "or this LLVM; compiling with your own flags")
        tuned = pipeline is not None and not pipeline.is_baseline
        if tuned and pipeline.profile is not None:
            from .pipeline import profile_intact, profile_path
            if not profile_intact(pipeline.profile):
                tuned = False
                counters.incr("error:profile-missing")
                counters.warn_once(f"the profile the tuned pipeline for {inv.source} uses is missing or damaged "
                                   f"({profile_path(pipeline.profile)}); compiling with your own flags "
                                   "(autopass-cc tune records it again)")
        counters.incr("miss" if pipeline is None and status != "hit" else ("hit:stale" if tuned and status == "stale" else "hit"))
        _record(project, compiler, inv, args, cwd, key_digest, tu_id, status, cplusplus)
        pipeline_id = pipeline.digest() if tuned else "baseline"

        tty = None
        if oc.on:
            from .objcache import tty_state
            tty = tty_state(os.environ)
            entry = oc.lookup(pipeline_id, tty)
            if entry is not None and early is not None:
                early.cancel()  # before the restore: it must not write the output after it
                early = None
            if entry is not None and oc.restore(entry):
                EARLY_START[0] = False
                counters.incr("object_hit")
                _replay(entry[2], entry[3])
                oc.detach(0)  # the manifest refresh and the counters are written after the client has gone
                oc.remember(key_digest, start_ns)
                return 0
            counters.incr("object_miss")
            EARLY_START[0] = True
        if early is not None and tuned:
            early.cancel()  # the tuned pipeline's compile is the one wanted
            early = None
        if not tuned and not oc.on and early is None:
            return None  # exec clang: its output, files and exit code are exactly its own

        import _signal
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)  # Ctrl-C ends us as it ends clang: no traceback
        env = {**os.environ, DEPTH_VAR: str(_depth() + 1)}
        extra = oc.listing_args() if early is None else early.extra
        if early is not None and oc.on:
            oc.base = early.base
        rc = None
        if tuned:
            from .emit import compile_tu
            res = compile_tu(compiler, inv, args, pipeline, cwd, extra=extra, env=env, tty=tty is not None,
                             forkable=_forkable(inv, settings))
            if res.returncode != 0:
                oc.cleanup()
                counters.incr("error:tuned-pipeline-failed")
                counters.warn_once(f"the tuned pipeline for {inv.source} failed to compile ({pipeline}); "
                                   "compiling with your own flags")
                if not oc.on:
                    return None
                pipeline_id = "baseline"
                extra = oc.listing_args()
            else:
                rc, out, err = 0, res.stdout, res.stderr
        if rc is None:
            if early is not None:
                rc, out, err = early.wait()
                if not oc.on:
                    early.remove_listing()  # (the plan said no after it started)
            else:
                from .emit import run_captured
                rc, out, err = run_captured([compiler] + list(args) + extra, env=env, tty=tty is not None,
                                            forkable=_forkable(inv, settings))
            if rc != 0 and extra:
                # Our extra output (the object cache's list of files read, written in the cache
                # directory) must never be why a compile fails -- e.g. on a full cache disk: the user's
                # own command decides, with clang's own diagnostics and exit code.
                oc.cleanup()
                return None
        if rc != 0:
            oc.cleanup()
            _replay(out, err)
            return rc
        captured = oc.capture(start_ns)
        _replay(out, err)
        if oc.base is not None:
            oc.detach(rc)  # the object is stored after the client has gone
        oc.save(captured, out, err, tty, pipeline_id, key_digest, start_ns)
        return rc
    finally:
        if started is not None and not started.done:
            started.cancel()  # a way out that did not use it (a pass-through, an error): before the exec


#: Options with which clang's driver runs the compiler proper or the assembler as child processes
#: (clang -ccc-print-phases; "-fintegrated-cc1" is clang's default since LLVM 10): SIGTERM to the
#: driver would not end them, and they could write the object after a cancel.
_DRIVER_CHILDREN = frozenset({"-fno-integrated-cc1", "-no-integrated-as", "-fno-integrated-as"})


def _forkable_as_given(args: list[str], settings: dict | None) -> bool:
    """May the command as given (a pass-through) run as a fork of a fork server?  Not when an
    argument is ``-`` (standard input or output: a command run again after a fork server died
    could not read its input twice), nor with ``fork_server = false``."""
    return bool(settings) and bool(settings.get("fork_server", True)) and "-" not in args


def _forkable(inv, settings: dict) -> bool:
    """May this call's compile run as a fork of a fork server (forkserver.py)?  Not when it reads
    standard input, nor with ``fork_server = false`` (AUTOPASS_FORK_SERVER=0)."""
    return inv.source != "-" and bool(settings.get("fork_server", True))


class _Early:
    """A compile of the user's command (plus the object cache's listing arguments) started before
    the lookups have decided it is needed (:func:`_start_early`)."""

    def __init__(self, run, extra: list[str], base: str | None):
        self.run, self.extra, self.base = run, extra, base
        self.done = False

    def wait(self):
        """``(exit code, stdout, stderr)`` of the compile."""
        self.done = True
        return self.run.wait()

    def cancel(self) -> None:
        """End the compile (no output is left: emit.Captured.cancel) and remove its listing."""
        self.done = True
        self.run.cancel()
        self.remove_listing()

    def remove_listing(self) -> None:
        from .objcache import remove_listing
        remove_listing(self.base)


def _start_early(compiler, inv, args, store, settings):
    """In a compile server's worker, after a miss (``EARLY_START``): start clang on the user's
    command now, with the object cache's listing arguments, and decide while it runs whether it
    is needed; a hit or a tuned pipeline cancels it.  What it saves is the lookups' time on the
    build's critical path, ~0.5-0.7 ms per cold compile here (traced: config, classify and the
    object cache's plan take ~1.1 ms of a worker's time before clang starts), where another core is
    free to run the compile meanwhile.  Its result is exactly what the later start would have
    given: the same command and environment, started after ``start_ns``.  Returns an
    :class:`_Early` or None (not after a hit; not where the object cache would refuse the call,
    or it is off)."""
    if not EARLY_START[0] or not settings.get("object_cache", True) or inv.source == "-":
        return None  # (a compile reading stdin is never started twice)
    if os.environ.get("CCC_OVERRIDE_OPTIONS") or any(
            a in _DRIVER_CHILDREN or a.startswith("-save-temps") for a in args):
        return None  # the driver would run cc1 or the assembler as processes a cancel may not end
    from .forkserver import is_elf
    if not is_elf(compiler):
        return None  # a script in front of clang may run it as a child that a cancel does not end
    from . import cachekey
    from .store import OBJECTS_DIR
    if cachekey.object_cache_refusal(inv, os.environ):
        return None
    from . import objcache
    from .emit import Captured
    try:
        base, extra = objcache.new_listing(os.path.join(store.directory, OBJECTS_DIR), inv)
    except OSError:
        return None  # (the plan finds out why and says so)
    import _signal
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)  # Ctrl-C ends us as it ends clang: no traceback
    env = {**os.environ, DEPTH_VAR: str(_depth() + 1)}
    try:
        run = Captured([compiler] + list(args) + extra, env=env, tty=objcache.tty_state(os.environ) is not None,
                       forkable=_forkable(inv, settings))
    except OSError:
        return None  # (nothing ran, nothing was written)
    return _Early(run, extra, base)


def _record(project, compiler, inv, args, cwd, key_digest, tu_id, status, cplusplus=False) -> None:
    from .invocation import is_probe
    if not project or is_probe(cwd, [inv.source]):
        return  # (Meson's checks wrote 210 of 554 records of pixman's build log)
    from . import buildlog
    try:
        buildlog.append(project, {
            "kind": "compile", "cwd": cwd, "compiler": compiler, "args": list(args),
            "source": os.path.abspath(os.path.join(cwd, inv.source)),
            "output": os.path.abspath(os.path.join(cwd, inv.output)), "lang": inv.lang,
            "key": key_digest, "tu_id": tu_id, "lookup": status, "cplusplus": bool(cplusplus)})
    except OSError:
        pass


def _record_unrecorded(project: str, args: list[str], cwd: str) -> None:
    """A compile (``-c``) passed through writes objects the build log does not describe: say so
    (buildlog "unrecorded"), so that a session does not rebuild them from an older record.  The
    outputs: ``-o``'s, else each input's ``<stem>.o`` in ``cwd`` (clang's names), response files
    read as clang would.  Configure probes (invocation.is_probe) are left out."""
    from .invocation import SEPARATE_ARG, expand_response_files, is_probe
    args = expand_response_files(args, cwd) or args
    if "-c" not in args:
        return
    outs = []
    for i, a in enumerate(args):
        if a.startswith("-o"):
            outs = [a[2:] or (args[i + 1] if i + 1 < len(args) else "-")]
            break
    if not outs:
        skip = False
        for a in args:
            if skip:
                skip = False
            elif a in SEPARATE_ARG:
                skip = True
            elif not a.startswith(("-", "@")) and "." in os.path.basename(a):
                outs.append(os.path.splitext(os.path.basename(a))[0] + ".o")
    outs = [os.path.abspath(os.path.join(cwd, o)) for o in outs
            if o not in ("-", os.devnull) and not is_probe(cwd, [o])]
    if outs:
        from . import buildlog
        try:
            buildlog.append(project, {"kind": "unrecorded", "outputs": outs})
        except OSError:
            pass


def _compile_each(compiler: str, plan, cwd: str, cplusplus: bool) -> int:
    """Run the compiles of a split one-step build (onestep.py) through autopass-cc itself, one after
    another as clang would (its diagnostics in order); returns 0, or the first failing exit code
    after all have run (clang compiles every source before it gives up on the link)."""
    import subprocess
    import sysconfig
    client = os.path.join(sysconfig.get_path("scripts"), "autopass-c++" if cplusplus else "autopass-cc")
    head = [client] if os.access(client, os.X_OK) else [sys.executable, "-m", __name__]
    env = {**os.environ, DEPTH_VAR: str(_depth() + 1)}
    failed = 0
    for cargs in plan.compiles:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            pass
        r = subprocess.run(head + [compiler] + cargs, cwd=cwd, env=env)
        if r.returncode != 0 and not failed:
            failed = r.returncode if r.returncode > 0 else 1
    return failed


def _on_link(compiler, args, cwd, project, settings, counters) -> None:
    """Record a link in the build log; with ``on_miss = "link"`` and this link producing the
    configured target, tune first (tuning/onlink.py).  Never raises for a failed session."""
    from . import buildlog
    from .invocation import classify_link, is_probe
    link = classify_link(args, cwd)
    if link is None or is_probe(cwd, [link.output] + list(link.inputs)):
        return  # (libtool's configure links conftest with conftstm.o: seen on FLAC)
    output = os.path.abspath(os.path.join(cwd, link.output))
    buildlog.append(project, {"kind": "link", "cwd": cwd, "compiler": compiler, "args": list(args),
                              "output": output,
                              "inputs": [os.path.abspath(os.path.join(cwd, x)) for x in link.inputs]})
    counters.incr("links")
    target = settings.get("target")
    if not (settings.get("on_miss") == "link" and target and settings.get("run")):
        return
    # libtool links a program ``d/prog`` as ``d/.libs/prog`` (or ``lt-prog``) behind a wrapper script.
    tdir, tname = os.path.split(os.path.abspath(os.path.join(project, target)))
    if (output in (os.path.join(tdir, tname), os.path.join(tdir, ".libs", tname), os.path.join(tdir, ".libs", "lt-" + tname))
            and os.environ.get("AUTOPASS_TUNE", "1") != "0" and not os.environ.get("AUTOPASS_IN_SESSION")):
        full_site()
        from .tuning.onlink import tune_at_link
        tune_at_link(project, settings, warn, output)


def main_c() -> int:
    """Console script ``autopass-cc``."""
    return main(sys.argv, cplusplus=False)


def main_cxx() -> int:
    """Console script ``autopass-c++``."""
    return main(sys.argv, cplusplus=True)


if __name__ == "__main__":
    sys.exit(main_c())
