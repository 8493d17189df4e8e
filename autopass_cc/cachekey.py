"""Invocation + compiler identity -> CacheKey(digest, material), as ccache's preprocessor mode.

In the key (it can change the object): the preprocessed translation unit (which already reflects
``-I``/``-D``/``-include``), the code-generation arguments in order, the language, the compiler's
identity (version text and a SHA-256 of its binary, not its mtime), its target triple, what
``-march=native``/``-mtune=native`` mean on this host, the working directory when debug info is
on (DW_AT_comp_dir) or coverage mapping is, the schema version, and the *contents* of files named by
code-generation options (``-fprofile-use=``, ``-fprofile-sample-use=``, sanitizer ignore lists ...).
Out of it: ``-o``, ``-c``, dependency-file options (``-MD -MF -MT ...``) and preprocessor-only
options -- except that the object's absolute path is in when the object embeds it (``-gsplit-dwarf``
names the ``.dwo``; ``--coverage`` names the ``.gcda``/``.gcno``).  Source: ccache manual, "How
ccache works" (the preprocessor mode hash list) and "compiler_check".

A second identity, the *TU id*, leaves out the preprocessed text: it names "this source file of
this project compiled with these arguments", so a pipeline tuned for yesterday's version of a file
can serve today's, marked stale (ARCHITECTURE.md decision 2).

``material`` keeps every ingredient readable so ``autopass-cc explain`` can say why a lookup missed.

The *direct key* (:func:`direct_key`) is the object cache's first-level key, as ccache's direct
mode: it needs no preprocessor run (the design, and what is in it, is in objcache.py).

Hot path: this module is imported by every intercepted compile, so it imports neither json nor
hashlib at module level (together ~10 ms a process): the canonical JSON of the material is written
with the C string encoder of the json package (``_json``), and SHA-256 comes from the built-in
``_sha256`` module.  Both give byte-identical results to ``json.dumps(..., sort_keys=True)`` and
``hashlib.sha256`` (tests/unit/test_cachekey.py checks it).
"""

from __future__ import annotations

import os
from collections import namedtuple

from . import SCHEMA_VERSION
from .invocation import DEP_ARG_FLAGS, DEP_FLAGS, Invocation

#: Options whose value is a file read by the compiler whose contents change the object.  For
#: ``-fprofile-use=DIR`` clang reads ``DIR/default.profdata``.
FILE_VALUED_OPTIONS = ("-fprofile-use=", "-fprofile-instr-use=", "-fprofile-sample-use=",
                       "-fauto-profile=", "-fprofile-remapping-file=", "-fsanitize-ignorelist=",
                       "-fsanitize-blacklist=", "-fprofile-list=", "-fxray-attr-list=",
                       "-fxray-always-instrument=", "-fxray-never-instrument=")
#: Options with which the object embeds its own (absolute) output path.
_OUTPUT_EMBEDDING = ("-gsplit-dwarf", "--coverage", "-ftest-coverage", "-fprofile-arcs")
#: Options with which the object embeds the working directory even without ``-g``.
_CWD_EMBEDDING = ("--coverage", "-ftest-coverage", "-fprofile-arcs", "-fcoverage-mapping")
#: Options that only change diagnostics, never the code: left out of the tuned-pipeline key and the
#: TU id (a build that adds -Wall keeps its tuning; seen on lz4, whose two builds differed only in
#: warnings), kept in the object cache's direct key (the cached stderr depends on them).  -Wa,
#: -Wl, and -Wp, pass options to other tools and are not warnings.
_DIAGNOSTIC_ONLY_PREFIXES = ("-W", "-pedantic", "-fdiagnostics-", "-fcolor-diagnostics", "-fno-color-diagnostics",
                             "-fmessage-length", "-ferror-limit", "-fcaret-diagnostics", "-fno-caret-diagnostics",
                             "-fshow-column", "-fno-show-column", "-fshow-source-location",
                             "-fno-show-source-location")
_NOT_DIAGNOSTIC = ("-Wa,", "-Wl,", "-Wp,")


def _diagnostic_only(arg: str) -> bool:
    """True for an option that changes what clang reports but not what it generates."""
    return arg == "-w" or (arg.startswith(_DIAGNOSTIC_ONLY_PREFIXES) and not arg.startswith(_NOT_DIAGNOSTIC))


class CacheKey(namedtuple("CacheKey", "digest tu_id material")):
    """``digest``: 40 hex digits (SHA-256 prefix) of the canonical material; ``tu_id``: 40 hex
    digits naming the TU independent of its content; ``material``: the readable ingredients."""
    __slots__ = ()


def preprocess_args(inv: Invocation) -> list[str]:
    """The user's arguments turned into a ``-E`` call writing to stdout: ``-c``, ``-o`` and
    dependency-file options are removed, everything else is kept in order."""
    out = []
    args = list(inv.args)
    i = 0
    while i < len(args):
        a = args[i]
        if i == inv.source_index:
            out.append(a)
            i += 1
            continue
        if a in ("-c", "--compile") or a in DEP_FLAGS:
            i += 1
            continue
        if a in ("-o", "--output") or a in DEP_ARG_FLAGS:
            i += 2
            continue
        if (a.startswith(("-MF", "-MT", "-MQ", "-MJ", "--output=")) or (a.startswith("-o") and len(a) > 2)):
            i += 1
            continue
        out.append(a)
        i += 1
    return out + ["-E"]


def _sha256():
    """The SHA-256 constructor, without importing hashlib (OpenSSL) when the built-in one exists."""
    try:
        from _sha256 import sha256  # CPython <= 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # CPython >= 3.12
        except ImportError:
            from hashlib import sha256
    return sha256


try:
    from _json import encode_basestring_ascii as _enc
except ImportError:  # pragma: no cover - Python without the C accelerator
    _enc = None


def json_text(obj, sort_keys: bool = False) -> str:
    """``json.dumps(obj, sort_keys=sort_keys)`` for dicts with string keys, lists, tuples, strings,
    ints, finite floats, bools and None -- the same text, without importing json (which pulls in re:
    ~7 ms a process on the compile hot path).  Anything else falls back to json.dumps.  Used for
    the cache-key material and for build-log records (tests/unit/test_buildlog.py compares)."""
    def enc(o):
        if isinstance(o, str):
            return _enc(o)
        if o is None:
            return "null"
        if o is True:
            return "true"
        if o is False:
            return "false"
        if type(o) is int:
            return int.__repr__(o)
        if type(o) is float and o == o and o not in (float("inf"), float("-inf")):
            return float.__repr__(o)
        if isinstance(o, dict):
            if not all(isinstance(k, str) for k in o):
                raise TypeError
            keys = sorted(o) if sort_keys else o
            return "{" + ", ".join(_enc(k) + ": " + enc(o[k]) for k in keys) + "}"
        if isinstance(o, (list, tuple)):
            return "[" + ", ".join(enc(v) for v in o) + "]"
        raise TypeError
    if _enc is not None:
        try:
            return enc(obj)
        except TypeError:
            pass
    import json
    return json.dumps(obj, sort_keys=sort_keys)


def canon_json(obj) -> str:
    """``json.dumps(obj, sort_keys=True)`` without importing json (see :func:`json_text`)."""
    return json_text(obj, sort_keys=True)


def _h(text: str) -> str:
    return _sha256()(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def _file_digest(path: str) -> str:
    """SHA-256 of a file's bytes, or ``"missing"`` (the compile will then fail on its own)."""
    try:
        h = _sha256()()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return "missing"


def input_files(inv: Invocation, cwd: str) -> dict:
    """``{option: sha256}`` for each code-generation option whose value is a file the compiler
    reads (FILE_VALUED_OPTIONS), resolved against ``cwd``."""
    out = {}
    for a in inv.codegen_args:
        for prefix in FILE_VALUED_OPTIONS:
            if a.startswith(prefix) and len(a) > len(prefix):
                path = os.path.join(cwd, a[len(prefix):])
                if prefix in ("-fprofile-use=", "-fprofile-instr-use=") and os.path.isdir(path):
                    path = os.path.join(path, "default.profdata")
                out[a] = _file_digest(path)
    return out


def codegen_material(inv: Invocation, identity: dict, cwd: str, native_cpu: str | None) -> dict:
    """Everything in the key except the preprocessed text (shared by the key and the TU id);
    diagnostic-only options (warnings) are left out.

    ``native_cpu`` is :func:`toolchain.host_cpu`'s string; it replaces ``native`` in
    ``-march=native``/``-mtune=native``/``-mcpu=native`` so that two hosts never share an entry."""
    args = [a for a in inv.codegen_args if not _diagnostic_only(a)]
    if inv.uses_native:
        args = [a.replace("=native", f"=native[{native_cpu or 'unknown'}]") for a in args]
    embeds_output = any(a.startswith(_OUTPUT_EMBEDDING) for a in args)
    embeds_cwd = inv.has_debug_info or any(a.startswith(_CWD_EMBEDDING) for a in args)
    material = {
        "schema": SCHEMA_VERSION,
        "compiler": {"version": identity.get("version"), "sha256": identity.get("sha256"),
                     "target": identity.get("target")},
        "lang": inv.lang,
        "codegen_args": args,
        "cwd": os.path.abspath(cwd) if embeds_cwd else None,
    }
    if embeds_output:
        material["output"] = os.path.abspath(os.path.join(cwd, inv.output))
    files = input_files(inv, cwd)
    if files:
        material["input_files"] = files
    return material


def tu_identity(inv: Invocation, material: dict, cwd: str, project: str | None) -> str:
    """The TU id: source path (relative to the project when inside it) + codegen material, without
    the contents of input files (a new profile, like a new version of the source, leaves the TU the
    same TU)."""
    src = os.path.abspath(os.path.join(cwd, inv.source))
    if project and (src + os.sep).startswith(os.path.abspath(project) + os.sep):
        src = os.path.relpath(src, project)
    ident = {k: v for k, v in material.items() if k != "input_files"}
    return _h(canon_json({"source": src, **ident}))


def compute(inv: Invocation, identity: dict, cwd: str, preprocessed: bytes, *,
            native_cpu: str | None = None, project: str | None = None) -> CacheKey:
    """The CacheKey of one TU compile.  ``preprocessed`` is the ``-E`` output (bytes); only its
    SHA-256 enters the key.  Runs no process; the only files read are those named by
    FILE_VALUED_OPTIONS (profiles, ignore lists)."""
    material = codegen_material(inv, identity, cwd, native_cpu)
    pre_hash = _sha256()(preprocessed).hexdigest()
    full = {**material, "preprocessed_sha256": pre_hash, "source": inv.source}
    digest = _h(canon_json({k: v for k, v in full.items() if k != "source"}))
    return CacheKey(digest=digest, tu_id=tu_identity(inv, material, cwd, project), material=full)


# ---- direct mode: the object cache's keys (objcache.py has the design) -------------------------
#: Options with which the object cache is not used (the compile is still intercepted for tuned
#: pipelines): they make clang write files besides the object and the dependency file (.dwo,
#: .gcno, .su, serialized diagnostics, stats), put the driver's command line into the object
#: (our extra ``-Xclang`` arguments would be in it), print timings to stderr, or change how clang
#: names the files it reads (working directory, sysroot, config files).
OBJECT_CACHE_REFUSED = frozenset({
    "-gsplit-dwarf", "--coverage", "-ftest-coverage", "-fprofile-arcs", "-fstack-usage", "-ftime-report",
    "-grecord-command-line", "-grecord-gcc-switches", "-frecord-command-line", "-frecord-gcc-switches",
    "-working-directory", "-isysroot", "--sysroot", "--config", "-serialize-diagnostics",
    "--serialize-diagnostics", "-save-stats", "-fproc-stat-report", "-MJ", "-print-stats",
})
OBJECT_CACHE_REFUSED_PREFIXES = ("-gsplit-dwarf=", "-MJ", "-ftime-report=", "--sysroot=", "-isysroot",
                                 "--config=", "--serialize-diagnostics=", "-save-stats=", "-fproc-stat-report=",
                                 "-Wp,", "-fdepfile-entry=", "-working-directory=")
#: Environment variables that change what clang reads or does: in the direct key (ccache's direct
#: mode hashes the first five; CCC_OVERRIDE_OPTIONS edits clang's command line).
DIRECT_ENV = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH", "OBJCPLUS_INCLUDE_PATH",
              "CCC_OVERRIDE_OPTIONS", "COMPILER_PATH", "GCC_EXEC_PREFIX", "SOURCE_DATE_EPOCH")
#: Environment variables with which clang writes extra files or output: no object cache.
REFUSED_ENV = ("CC_PRINT_OPTIONS", "CC_PRINT_HEADERS", "CC_LOG_DIAGNOSTICS", "CC_PRINT_PROC_STAT",
               "CC_PRINT_INTERNAL_STAT", "CC_PRINT_HEADERS_FORMAT")
#: Dependency-file generation on: the default target is then the object path as written.
_DEP_ON = ("-MD", "-MMD", "--write-dependencies", "--write-user-dependencies")


def object_cache_refusal(inv: Invocation, environ) -> str | None:
    """Why the object cache cannot serve this compile (a short stats label), or None."""
    for a in inv.args:
        if a in OBJECT_CACHE_REFUSED or a.startswith(OBJECT_CACHE_REFUSED_PREFIXES):
            return "option " + a.split("=", 1)[0]
    for v in REFUSED_ENV:
        if environ.get(v):
            return "environment " + v
    return None


def _blake(data: bytes) -> str:
    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover
        from hashlib import blake2b
    return blake2b(data, digest_size=20).hexdigest()


def effective_cwd(cwd: str, environ) -> str:
    """The directory clang names as its working directory (DW_AT_comp_dir, relative paths): $PWD
    when it is absolute and names the same directory as ``cwd`` (llvm::sys::fs::current_path does
    this, to keep symlinked paths), else ``cwd``."""
    pwd = environ.get("PWD")
    if pwd and pwd != cwd and os.path.isabs(pwd):
        try:
            a, b = os.stat(pwd), os.stat(cwd)
            if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                return pwd
        except OSError:
            pass
    return pwd if pwd == cwd else cwd


def masked_args(inv: Invocation) -> list[str]:
    """The arguments as given, with the values of ``-o`` and ``-MF`` replaced by placeholders
    (where the object and the dependency file go does not change their bytes; the object path
    as written is added to the direct key separately when it is the depfile's default target)."""
    out, args, i = [], list(inv.args), 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "--output", "-MF") and i + 1 < len(args) and i != inv.source_index:
            out += [a, "<output>" if a != "-MF" else "<depfile>"]
            i += 2
            continue
        if a.startswith("--output="):
            out.append("--output=<output>")
        elif a.startswith("-o") and len(a) > 2 and i != inv.source_index:
            out.append("-o<output>")
        elif a.startswith("-MF") and len(a) > 3:
            out.append("-MF<depfile>")
        else:
            out.append(a)
        i += 1
    return out


def deps_on(inv: Invocation) -> bool:
    """True when the compile writes a dependency file (``-MD``, ``-MMD``)."""
    return any(a in _DEP_ON for a in inv.dep_args)


def direct_key(inv: Invocation, identity: dict, cwd: str, *, cplusplus: bool, native_cpu: str | None,
               environ, source_digest: str) -> str:
    """The direct key (the manifest's key): everything that decides which files the compile reads
    and, with their contents, what it writes -- compiler identity (version, SHA-256 of the binary,
    target), driver mode, the effective working directory, the arguments as given (output and
    depfile paths masked), the object path as written when a dependency file is written (its
    default target), DIRECT_ENV variables, what ``-march=native`` means here, the contents of
    files named by code-generation options (profiles, ignore lists) and the source's contents.
    40 hex digits (BLAKE2b-160)."""
    args = masked_args(inv)
    if inv.uses_native:
        args = [a.replace("=native", f"=native[{native_cpu or 'unknown'}]") for a in args]
    material = {
        "kind": "direct", "schema": SCHEMA_VERSION,
        "compiler": [identity.get("version"), identity.get("sha256"), identity.get("target")],
        "cplusplus": bool(cplusplus), "cwd": effective_cwd(cwd, environ), "args": args,
        "output": inv.output if deps_on(inv) else None,
        "env": {k: environ[k] for k in DIRECT_ENV if k in environ},
        "source": source_digest,
    }
    files = input_files(inv, cwd)
    if files:
        material["input_files"] = files
    return _blake(canon_json(material).encode("utf-8", "surrogateescape"))


def content_key(direct: str, files) -> str:
    """The key of one compile's inputs: the direct key and each file it read (path as clang named
    it, and BLAKE2b of its contents), in the order listed."""
    text = direct + "".join(f"\0{path}\0{digest}" for path, digest in files)
    return _blake(text.encode("utf-8", "surrogateescape"))


def object_key(content: str, pipeline_id: str) -> str:
    """The object entry's key: the inputs (content key) and the Pipeline actually used (its
    digest; ``"baseline"`` for the user's own flags)."""
    return _blake(f"obj\0{SCHEMA_VERSION}\0{content}\0{pipeline_id}".encode())
