"""Invocation + compiler identity -> CacheKey(digest, material), as ccache's preprocessor mode.

In the key (it can change the object): the preprocessed translation unit (which already reflects
``-I``/``-D``/``-include``), the code-generation arguments in order, the language, the compiler's
identity (version text and a SHA-256 of its binary, not its mtime), its target triple, what
``-march=native``/``-mtune=native`` mean on this host, the working directory when debug info is
on (DW_AT_comp_dir), and the schema version.  Out of it: ``-o``, ``-c``, dependency-file options
(``-MD -MF -MT ...``) and preprocessor-only options.  Source: ccache manual, "How ccache works"
(the preprocessor mode hash list) and "compiler_check".

A second identity, the *TU id*, leaves out the preprocessed text: it names "this source file of
this project compiled with these arguments", so a pipeline tuned for yesterday's version of a file
can serve today's, marked stale (ARCHITECTURE.md decision 2).

``material`` keeps every ingredient readable so ``autopass-cc explain`` can say why a lookup missed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from . import SCHEMA_VERSION
from .invocation import DEP_ARG_FLAGS, DEP_FLAGS, Invocation


@dataclass(frozen=True)
class CacheKey:
    """``digest``: 40 hex digits (SHA-256 prefix) of the canonical material; ``tu_id``: 40 hex
    digits naming the TU independent of its content; ``material``: the readable ingredients."""
    digest: str
    tu_id: str
    material: dict


def preprocess_args(inv: Invocation) -> list[str]:
    """The user's arguments turned into a ``-E`` call writing to stdout: ``-c``, ``-o`` and
    dependency-file options are removed, everything else is kept in order."""
    out = []
    args = list(inv.args)
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-c" or a in DEP_FLAGS:
            i += 1
            continue
        if a == "-o" or a in DEP_ARG_FLAGS:
            i += 2
            continue
        if a.startswith(("-MF", "-MT", "-MQ", "-MJ")) or (a.startswith("-o") and len(a) > 2 and i != inv.source_index):
            i += 1
            continue
        out.append(a)
        i += 1
    return out + ["-E"]


def _h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def codegen_material(inv: Invocation, identity: dict, cwd: str, native_cpu: str | None) -> dict:
    """Everything in the key except the preprocessed text (shared by the key and the TU id)."""
    args = list(inv.codegen_args)
    if inv.uses_native:
        args = [a.replace("=native", f"=native[{native_cpu}]") for a in args]
    return {
        "schema": SCHEMA_VERSION,
        "compiler": {"version": identity.get("version"), "sha256": identity.get("sha256"),
                     "target": identity.get("target")},
        "lang": inv.lang,
        "codegen_args": args,
        "cwd": os.path.abspath(cwd) if inv.has_debug_info else None,
    }


def tu_identity(inv: Invocation, material: dict, cwd: str, project: str | None) -> str:
    """The TU id: source path (relative to the project when inside it) + codegen material."""
    src = os.path.abspath(os.path.join(cwd, inv.source))
    if project and (src + os.sep).startswith(os.path.abspath(project) + os.sep):
        src = os.path.relpath(src, project)
    return _h(json.dumps({"source": src, **material}, sort_keys=True))


def compute(inv: Invocation, identity: dict, cwd: str, preprocessed: bytes, *,
            native_cpu: str | None = None, project: str | None = None) -> CacheKey:
    """The CacheKey of one TU compile.  ``preprocessed`` is the ``-E`` output (bytes); only its
    SHA-256 enters the key.  Pure (no processes)."""
    material = codegen_material(inv, identity, cwd, native_cpu)
    pre_hash = hashlib.sha256(preprocessed).hexdigest()
    full = {**material, "preprocessed_sha256": pre_hash, "source": inv.source}
    digest = _h(json.dumps({k: v for k, v in full.items() if k != "source"}, sort_keys=True))
    return CacheKey(digest=digest, tu_id=tu_identity(inv, material, cwd, project), material=full)
