"""Find the real compiler (never autopass-cc itself), its identity, and the LLVM 19 tools.

Lookup order for the real compiler (ARCHITECTURE.md decision 8 and issue "end to end"): the
compiler named after the launcher (``autopass-cc clang-19 ...``: the build system chose it) > the
config's ``compiler``/``cxx_compiler`` > ``AUTOPASS_CC`` / ``AUTOPASS_CXX`` > for a masquerade link
named ``clang``/``clang++`` the next one of that name in PATH > ``clang-19`` / ``clang++-19`` >
``clang`` / ``clang++`` in PATH.  A launched compiler that is not clang (``/usr/bin/cc`` = gcc) is
run, and every call passes through unchanged (wrapper.py checks the identity).
Any PATH entry that resolves to autopass-cc (our console scripts, the shims) is skipped, so a
misconfiguration is an error message, not a fork bomb.

Compiler identity follows ccache's ``compiler_check = content``: the version text plus a SHA-256
of the binary's bytes.  Hashing ~100 MB per compile would be too slow, so the identity is cached
in a small JSON file keyed by (real path, size, mtime_ns, inode); a changed binary changes that key.
"""

from __future__ import annotations

import os

from .errors import CompilerNotFound

#: LLVM major version whose tools (opt-19, llvm-profdata-19, ...) the tuning session uses.
LLVM_MAJOR = 19


def is_autopass(path: str) -> bool:
    """True when ``path`` is one of our own entry points (console script, shim link, module).

    A pip console script is a small Python file that imports ``autopass_cc``; shims are links
    to it.  Raises nothing: unreadable files count as "not us".
    """
    try:
        real = os.path.realpath(path)
        if os.path.basename(real).startswith("autopass-c"):
            return True
        if os.path.getsize(real) > 65536:
            return False
        with open(real, "rb") as f:
            head = f.read(4096)
        return head.startswith(b"#!") and b"autopass_cc" in head
    except OSError:
        return False


def _on_path(name: str, path: str | None = None):
    """Yield each executable file called ``name`` along PATH, in order (no name with a ``/``)."""
    for d in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            yield cand


def which_all(name: str, path: str | None = None) -> list[str]:
    """Every executable called ``name`` along PATH, in order (duplicates by real path removed)."""
    if os.sep in name:
        return [name] if os.access(name, os.X_OK) and os.path.isfile(name) else []
    found, seen = [], set()
    for cand in _on_path(name, path):
        real = os.path.realpath(cand)
        if real not in seen:
            seen.add(real)
            found.append(cand)
    return found


def which_real(name: str) -> str | None:
    """First ``name`` in PATH that is not autopass-cc, or None.  Stops at the first one (a
    compile's lookup: 0.12 -> 0.07 ms here, where PATH goes on past /usr/bin)."""
    if os.sep in name:
        return next((c for c in which_all(name) if not is_autopass(c)), None)
    for cand in _on_path(name):
        if not is_autopass(cand):
            return cand
    return None


def find_real_compiler(cplusplus: bool, *, explicit: str | None = None,
                       masquerade_name: str | None = None) -> str:
    """Path of the real compiler to run.

    ``explicit`` is a compiler named by the user (AUTOPASS_CC, the config, or the launcher's first
    argument).  ``masquerade_name`` is the name we were invoked under through a shim (``cc``,
    ``clang++`` ...).  Raises CompilerNotFound with a one-line fix when nothing usable exists or
    when the explicit compiler is autopass-cc itself.
    """
    env_name = "AUTOPASS_CXX" if cplusplus else "AUTOPASS_CC"
    explicit = explicit or os.environ.get(env_name) or None
    if explicit:
        cand = which_real(explicit) if os.sep not in explicit else explicit
        if cand is None or not os.access(cand, os.X_OK):
            if which_all(explicit):
                raise CompilerNotFound(
                    f"the compiler {explicit!r} resolves to autopass-cc itself; set {env_name} to a "
                    "real clang (e.g. clang-19)")
            raise CompilerNotFound(f"compiler {explicit!r} not found; set {env_name} to a real clang "
                                   "(e.g. clang-19) or install it with ./install.sh")
        if is_autopass(cand):
            raise CompilerNotFound(f"the compiler {explicit!r} resolves to autopass-cc itself; set "
                                   f"{env_name} to a real clang (e.g. clang-19)")
        return cand
    names = []
    if masquerade_name in ("clang", "clang++") or (masquerade_name or "").startswith("clang"):
        names.append(masquerade_name)
    names += ([f"clang++-{LLVM_MAJOR}", "clang++"] if cplusplus else [f"clang-{LLVM_MAJOR}", "clang"])
    if masquerade_name and masquerade_name not in names:
        names.append(masquerade_name)
    for name in names:
        cand = which_real(name)
        if cand:
            return cand
    raise CompilerNotFound(f"no real compiler found (looked for {', '.join(names)} in PATH); "
                           f"install clang-{LLVM_MAJOR} (./install.sh) or set {env_name}")


def llvm_tool(name: str) -> str:
    """Path of an LLVM tool of the supported major version, e.g. ``llvm_tool("opt")`` ->
    ``/usr/bin/opt-19`` (Debian names them with a ``-19`` suffix; ``/usr/bin/opt`` may be an older
    LLVM).  Falls back to ``/usr/lib/llvm-19/bin/<name>``.  Raises CompilerNotFound."""
    for cand in (f"{name}-{LLVM_MAJOR}", f"/usr/lib/llvm-{LLVM_MAJOR}/bin/{name}"):
        path = which_real(cand) if os.sep not in cand else (cand if os.access(cand, os.X_OK) else None)
        if path:
            return path
    raise CompilerNotFound(f"{name}-{LLVM_MAJOR} not found; install llvm-{LLVM_MAJOR} (./install.sh)")


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes (hex): compiler identity, byte-identical binaries in a session."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _identity_cache_dir() -> str:
    from .config import cache_dir  # local import: config is light, but keep toolchain standalone
    return os.path.join(cache_dir(), "compilers")


def _sha1_hex(data: bytes) -> str:
    """SHA-1 hex digest without importing hashlib (which loads OpenSSL: ~3 ms per compile)."""
    try:
        from _sha1 import sha1
    except ImportError:  # pragma: no cover - other Python builds
        from hashlib import sha1
    return sha1(data).hexdigest()


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; errors are ignored (a
    read-only cache only costs the recomputation next time)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


#: compiler_identity's answers in this process, by the path of the file that holds each (in that
#: cache, named by the binary's real path, size, mtime and inode): as valid as that file, used
#: while it exists (a cache cleared since, or another AUTOPASS_CACHE_DIR, gets it written again).
_IDENTITIES: dict[str, dict] = {}


def compiler_identity(compiler: str) -> dict:
    """Identity of a compiler binary: ``{"path", "real", "version", "sha256", "target", "is_clang",
    "llvm_major"}``.  Cached on disk (see module docstring) as JSON and, for the compile hot path,
    as a marshal file read without importing json; computing it runs ``--version`` once and hashes
    the binary.  Raises OSError if the binary cannot be read."""
    import marshal
    real = os.path.realpath(compiler)
    st = os.stat(real)
    stamp = _sha1_hex(f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}".encode("utf-8", "surrogateescape"))
    cache_file = os.path.join(_identity_cache_dir(), stamp + ".json")
    known = _IDENTITIES.get(cache_file)
    if known is not None and os.path.exists(cache_file[:-5] + ".marshal"):
        return {**known, "path": compiler}  # (a server worker serves many calls: a stat, no read)
    try:
        with open(cache_file[:-5] + ".marshal", "rb") as f:
            ident = marshal.load(f)
        if isinstance(ident, dict) and ident.get("real") == real and "sha256" in ident:
            _IDENTITIES[cache_file] = dict(ident)
            ident["path"] = compiler
            return ident
    except (OSError, ValueError, EOFError, TypeError):
        pass
    import json
    try:
        with open(cache_file, encoding="utf-8") as f:
            ident = json.load(f)
        if ident.get("real") == real:
            ident["path"] = compiler
            _write_atomic(cache_file[:-5] + ".marshal", marshal.dumps(ident))
            return ident
    except (OSError, ValueError):
        pass
    import re
    import subprocess
    out = subprocess.run([real, "--version"], capture_output=True, text=True, timeout=60)
    version = out.stdout.splitlines()[0] if out.stdout else ""
    target = ""
    for line in out.stdout.splitlines():
        if line.startswith("Target:"):
            target = line.split(":", 1)[1].strip()
    m = re.search(r"clang version (\d+)", version)
    ident = {"path": compiler, "real": real, "version": version, "sha256": file_sha256(real),
             "target": target, "is_clang": "clang" in version,
             "llvm_major": int(m.group(1)) if m else None}
    _write_atomic(cache_file, json.dumps(ident).encode("utf-8", "surrogateescape"))
    _write_atomic(cache_file[:-5] + ".marshal", marshal.dumps(ident))
    return ident


def host_cpu(compiler: str) -> str:
    """What ``-march=native`` means for this compiler on this host: the ``-target-cpu`` and
    ``-target-feature`` list clang's driver derives (``clang -march=native -### -c``).  ccache
    hashes the same so that a cache shared between machines never mixes ISAs.  Cached beside the
    compiler identity, keyed by the compiler and the host's /proc/cpuinfo model and flags."""
    ident = compiler_identity(compiler)
    try:
        with open("/proc/cpuinfo", "rb") as f:
            cpuinfo = b"\n".join(l for l in f.read().splitlines() if l.startswith((b"model name", b"flags")))
    except OSError:
        cpuinfo = b""
    stamp = _sha1_hex(ident["sha256"].encode() + cpuinfo)
    cache_file = os.path.join(_identity_cache_dir(), "native-" + stamp + ".txt")
    try:
        with open(cache_file, encoding="utf-8") as f:
            return f.read()
    except OSError:
        pass
    value = _host_cpu_uncached(compiler)
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        with open(cache_file + f".{os.getpid()}", "w", encoding="utf-8") as f:
            f.write(value)
        os.replace(cache_file + f".{os.getpid()}", cache_file)
    except OSError:
        pass
    return value


def _host_cpu_uncached(compiler: str) -> str:
    import re
    import subprocess
    out = subprocess.run([compiler, "-march=native", "-###", "-x", "c", "-c", os.devnull, "-o", os.devnull],
                         capture_output=True, text=True, timeout=60)
    cpu = re.search(r'"-target-cpu" "([^"]+)"', out.stderr)
    feats = re.findall(r'"-target-feature" "([^"]+)"', out.stderr)
    return (cpu.group(1) if cpu else "unknown") + ":" + ",".join(sorted(feats))


def llvm_option_names(compiler: str) -> frozenset[str]:
    """Names of the ``-mllvm`` options the installed LLVM accepts (from ``-mllvm --help-hidden``),
    without leading dashes.  Used to check knobs before a trial is spent on them."""
    import re
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write("int x;\n")
        out = subprocess.run([compiler, "-c", src, "-o", os.path.join(d, "t.o"), "-mllvm", "--help-hidden"],
                             capture_output=True, text=True, timeout=120)
    return frozenset(re.findall(r"^\s+--?([A-Za-z0-9][A-Za-z0-9_.-]*)", out.stdout, re.M))


def host_flag_trouble(compiler: str) -> frozenset:
    """The ``(family, choice)`` flag choices of pipeline.FLAG_FAMILIES whose meaning depends on the
    host (``=native``) and that this compiler does not take cleanly here: a diagnostic from
    ``COMPILER -Werror ARGV -fsyntax-only -x c /dev/null``.  Why: clang 18-19's ``-march=native``
    on a CPU whose CPUID reports AVX10.1/256 warns "invalid feature combination: +avx10.1-256; will
    be promoted to avx10.1-512" (llvm-project PR #132542 retired AVX10/256; seen here on a Xeon and
    on GitHub's runners, actions/runner-images#14296), which would reach the user's stderr with
    every compile of a tuned TU and fail a -Werror build.  One clang run (~20 ms) per such choice."""
    import subprocess
    from .pipeline import FLAG_FAMILIES
    out = set()
    for name, fam in FLAG_FAMILIES.items():
        for choice, argv in fam.choices.items():
            if not any("native" in a for a in argv):
                continue
            try:
                r = subprocess.run([compiler, "-Werror", *argv, "-fsyntax-only", "-x", "c", os.devnull],
                                   capture_output=True, timeout=60)
                bad = r.returncode != 0 or r.stderr.strip()
            except (OSError, subprocess.SubprocessError):
                bad = True
            if bad:
                out.add((name, choice))
    return frozenset(out)
