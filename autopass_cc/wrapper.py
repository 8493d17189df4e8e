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

SUBCOMMANDS = {"init", "tune", "stats", "explain", "cache", "demo", "doctor", "help"}
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


def _exec_real(compiler: str, args: list[str]) -> int:
    """Replace this process with the real compiler (exact exit code, output and files).  The
    compiler's environment is ours plus the nesting counter (os.environ itself is left alone)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    try:
        os.execve(compiler, [compiler] + list(args), {**os.environ, DEPTH_VAR: str(_depth() + 1)})
    except OSError as e:
        warn(f"cannot run {compiler}: {e}")
        return 127
    return 0  # not reached


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
    """Counters bumped lazily: the store is opened once per process, only if something is
    counted, and any failure to count is silent (counting must never break a build)."""

    def __init__(self, settings: dict | None):
        self.settings = settings or {}
        self._store = None
        self.unavailable: str | None = None

    def store(self):
        if self._store is None and self.unavailable is None:
            from .store import open_store
            try:
                self._store = open_store(size_limit=self.settings.get("cache_size"))
            except Exception as e:
                self.unavailable = str(e)
        return self._store

    def incr(self, name: str) -> None:
        try:
            s = self.store()
            if s is not None:
                s.incr(name)
        except Exception:
            pass


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
    from .invocation import Skip, classify
    try:
        inv = classify(args, cwd, cplusplus=cplusplus)
    except Exception as e:  # a classifier bug must not break a build
        warn(f"internal error classifying the call ({type(e).__name__}: {e}); running the compiler as given")
        counters.incr("error:internal")
        return _exec_real(compiler, args)

    if isinstance(inv, Skip):
        counters.incr("passthrough:" + inv.reason)
        if inv.is_link and project and settings:
            try:
                _on_link(compiler, args, cwd, project, settings, counters)
            except Exception as e:
                warn(f"could not record or tune this link ({type(e).__name__}: {e}); linking as asked")
                counters.incr("error:link-hook")
        return _exec_real(compiler, args)

    if config_error:
        warn(f"{config_error}; compiling with your own flags")
        counters.incr("error:config")
        return _exec_real(compiler, args)
    try:
        rc = _intercept(compiler, inv, args, cwd, project, settings, counters, cplusplus)
        if rc is not None:
            return rc
    except Exception as e:
        warn(f"internal error ({type(e).__name__}: {e}); compiling with your own flags")
        counters.incr("error:internal")
    return _exec_real(compiler, args)


def lookup(store, key, settings: dict):
    """The Pipeline to use for a CacheKey, with how it was found: ``(pipeline|None, status,
    entry|None)``; status is ``"hit"``, ``"stale"`` (same TU, other content), ``"miss"`` or
    ``"refused"`` (stored pipeline not allowed by the current policy).  Shared with ``explain``."""
    from .errors import PipelineError
    from .pipeline import FLAG_FAMILIES, Pipeline, Policy, validate
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
    if status == "stale" and any(FLAG_FAMILIES[f].unsafe and c not in ("off", "on") for f, c in p.flags):
        return None, "miss", entry  # value-changing pipelines were verified on other code
    return p, status, entry


def _intercept(compiler, inv, args, cwd, project, settings, counters, cplusplus=False) -> int | None:
    """Compile one TU: key, lookup, emit.  Returns an exit code, or None to run the user's command."""
    from . import cachekey
    from .toolchain import compiler_identity, host_cpu
    ident = compiler_identity(compiler)
    if not ident.get("is_clang"):
        counters.incr("passthrough:not clang")
        return None
    native = host_cpu(compiler) if inv.uses_native else None
    material = cachekey.codegen_material(inv, ident, cwd, native)
    tu_id = cachekey.tu_identity(inv, material, cwd, project)
    store = counters.store()
    if store is None:
        warn(f"{counters.unavailable}; compiling with your own flags")
        _record(project, compiler, inv, args, cwd, None, tu_id, "error", cplusplus)
        return None
    # No entry for this TU identity means no exact key can hit either: skip the preprocessor (the
    # dominant cost of a cold build) and compile as asked.  The session computes exact keys itself.
    if store.get_by_tu(tu_id) is None:
        counters.incr("miss")
        _record(project, compiler, inv, args, cwd, None, tu_id, "miss", cplusplus)
        return None
    import subprocess
    pre = subprocess.run([compiler] + cachekey.preprocess_args(inv), cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if pre.returncode != 0:
        counters.incr("passthrough:preprocessor error")
        return None
    key = cachekey.compute(inv, ident, cwd, pre.stdout, native_cpu=native, project=project)
    pipeline, status, _ = lookup(store, key, settings)
    _record(project, compiler, inv, args, cwd, key.digest, key.tu_id, status, cplusplus)
    if pipeline is None or pipeline.is_baseline:
        counters.incr("miss" if pipeline is None else "hit")
        if status == "refused":
            counters.incr("error:pipeline-refused")
        return None
    from .emit import compile_tu
    res = compile_tu(compiler, inv, args, pipeline, cwd)
    if res.returncode != 0:
        warn(f"the tuned pipeline for {inv.source} failed to compile ({pipeline}); compiling with your own flags")
        counters.incr("error:tuned-pipeline-failed")
        return None
    counters.incr("hit:stale" if status == "stale" else "hit")
    sys.stdout.buffer.write(res.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(res.stderr)
    sys.stderr.flush()
    return 0


def _record(project, compiler, inv, args, cwd, key_digest, tu_id, status, cplusplus=False) -> None:
    if not project:
        return
    from . import buildlog
    try:
        buildlog.append(project, {
            "kind": "compile", "cwd": cwd, "compiler": compiler, "args": list(args),
            "source": os.path.abspath(os.path.join(cwd, inv.source)),
            "output": os.path.abspath(os.path.join(cwd, inv.output)), "lang": inv.lang,
            "key": key_digest, "tu_id": tu_id, "lookup": status, "cplusplus": bool(cplusplus)})
    except OSError:
        pass


def _on_link(compiler, args, cwd, project, settings, counters) -> None:
    """Record a link in the build log; with ``on_miss = "link"`` and this link producing the
    configured target, tune first (tuning/onlink.py).  Never raises for a failed session."""
    from . import buildlog
    from .invocation import classify_link
    link = classify_link(args, cwd)
    if link is None:
        return
    output = os.path.abspath(os.path.join(cwd, link.output))
    buildlog.append(project, {"kind": "link", "cwd": cwd, "compiler": compiler, "args": list(args),
                              "output": output,
                              "inputs": [os.path.abspath(os.path.join(cwd, x)) for x in link.inputs]})
    counters.incr("links")
    target = settings.get("target")
    if (settings.get("on_miss") == "link" and target and settings.get("run")
            and os.path.abspath(os.path.join(project, target)) == output
            and os.environ.get("AUTOPASS_TUNE", "1") != "0" and not os.environ.get("AUTOPASS_IN_SESSION")):
        full_site()
        from .tuning.onlink import tune_at_link
        tune_at_link(project, settings, warn)


def main_c() -> int:
    """Console script ``autopass-cc``."""
    return main(sys.argv, cplusplus=False)


def main_cxx() -> int:
    """Console script ``autopass-c++``."""
    return main(sys.argv, cplusplus=True)


if __name__ == "__main__":
    sys.exit(main_c())
