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
"""

from __future__ import annotations

import hashlib
import json
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


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def _file_digest(path: str) -> str:
    """SHA-256 of a file's bytes, or ``"missing"`` (the compile will then fail on its own)."""
    try:
        h = hashlib.sha256()
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
    """Everything in the key except the preprocessed text (shared by the key and the TU id).

    ``native_cpu`` is :func:`toolchain.host_cpu`'s string; it replaces ``native`` in
    ``-march=native``/``-mtune=native``/``-mcpu=native`` so that two hosts never share an entry."""
    args = list(inv.codegen_args)
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
    return _h(json.dumps({"source": src, **ident}, sort_keys=True))


def compute(inv: Invocation, identity: dict, cwd: str, preprocessed: bytes, *,
            native_cpu: str | None = None, project: str | None = None) -> CacheKey:
    """The CacheKey of one TU compile.  ``preprocessed`` is the ``-E`` output (bytes); only its
    SHA-256 enters the key.  Runs no process; the only files read are those named by
    FILE_VALUED_OPTIONS (profiles, ignore lists)."""
    material = codegen_material(inv, identity, cwd, native_cpu)
    pre_hash = hashlib.sha256(preprocessed).hexdigest()
    full = {**material, "preprocessed_sha256": pre_hash, "source": inv.source}
    digest = _h(json.dumps({k: v for k, v in full.items() if k != "source"}, sort_keys=True))
    return CacheKey(digest=digest, tu_id=tu_identity(inv, material, cwd, project), material=full)
