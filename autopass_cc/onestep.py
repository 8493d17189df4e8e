"""One-step builds (``cc CFLAGS -o prog a.c b.c -lm``): compile each source on its own, then link.
Also multi-source compiles (``cc CFLAGS -c a.c b.c``, lz4's lib/Makefile): each source compiled on
its own (:func:`split_compile`).

clang compiles every source of such a command to a temporary object and links them; nothing of it
is a TU compile autopass-cc could cache or tune, and the build log gets no link it could relink.
In a project with an ``autopass.toml`` the wrapper therefore splits it: one ``-c`` compile per
source into ``.autopass/objects/<link digest>/<n>-<stem>.o`` (kept, so a session can relink
them), through autopass-cc like any compile, then the same command with each source replaced by
its object at the same place.  The binary is byte-identical to the one-step build's (object file
names are not part of it; DWARF names the source and the directory).

Only commands whose every argument is known to belong to compiling, to linking, or to both are
split; anything else (``-x``, ``-M*``, response files, ``-save-temps``, ``-v``, assembler sources,
unknown options) goes to clang unchanged.  ``AUTOPASS_SPLIT=0`` turns splitting off.
"""

from __future__ import annotations

import hashlib
import os
from collections import namedtuple

from .config import state_dir

#: Sources split out (the languages the wrapper intercepts).
SOURCE_EXTS = (".c", ".cc", ".cpp", ".cxx", ".c++", ".C")
#: Inputs that stay on the link line.
LINK_INPUT_EXTS = (".o", ".a", ".so", ".lo")
#: Options for both the compiles and the link (a link ignores the preprocessor ones).
BOTH_PREFIXES = ("-O", "-g", "-f", "-m", "-W", "-D", "-U", "-I", "-std=", "--std=", "-isystem", "-iquote",
                 "-idirafter", "-include", "-imacros", "-pedantic", "-w", "-pthread", "-ansi", "--sysroot",
                 "-isysroot", "--target=", "-target", "-stdlib=")
BOTH_SEPARATE = {"-I", "-D", "-U", "-isystem", "-iquote", "-idirafter", "-include", "-imacros", "-target",
                 "--sysroot", "-isysroot"}
#: Options only the link takes.
LINK_ONLY_EXACT = {"-s", "-static", "-shared", "-rdynamic", "-pie", "-no-pie", "-static-pie", "-nostdlib",
                   "-nostartfiles", "-nodefaultlibs", "-static-libgcc", "-static-libstdc++"}
LINK_ONLY_SEPARATE = {"-l", "-L", "-Xlinker", "-u", "-z", "-T"}
LINK_ONLY_PREFIXES = ("-l", "-L", "-Wl,", "-fuse-ld=", "--ld-path=", "-rtlib=", "--rtlib=", "-unwindlib=")
#: Options that mean "leave this command alone" (checked first).
REFUSE_EXACT = {"--", "-", "-v", "-###", "-E", "-S", "-c", "-fsyntax-only", "-save-temps"}
REFUSE_PREFIXES = ("-x", "-M", "@", "-save-temps=", "-Xclang", "-flto", "-Wp,", "-Xpreprocessor", "-Xassembler",
                   "-emit", "-fplugin", "-fpass-plugin", "-fprofile-generate", "-fprofile-instr-generate",
                   "-fcs-profile-generate", "-fmodules", "-include-pch")

Plan = namedtuple("Plan", "compiles link_args")


def _probe(args: list[str], sources: list[int], cwd: str) -> bool:
    """A configure check (invocation.is_probe: autoconf's conftest.c, CMake's try_compile
    directories, Meson's meson-private): nothing to tune, and it runs hundreds of times, so it is
    left to clang in one step."""
    from .invocation import is_probe
    return is_probe(cwd, [args[i] for i in sources])


def split(args: list[str], cwd: str, project: str) -> Plan | None:
    """The per-source compiles (argument lists without the compiler) and the link arguments for a
    one-step build ``args`` run in ``cwd``, or None when it must run unchanged (see the module
    docstring).  Pure apart from creating the objects' directory."""
    common, sources, out = [], [], None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-o":
            if i + 1 >= len(args):
                return None
            out = args[i + 1]
            i += 2
            continue
        if a in REFUSE_EXACT or a.startswith(REFUSE_PREFIXES):
            return None
        if a.startswith("-o") and len(a) > 2:
            out = a[2:]
        elif not a.startswith("-"):
            if a.endswith(SOURCE_EXTS):
                sources.append(i)
            elif not (a.endswith(LINK_INPUT_EXTS) or ".so." in os.path.basename(a)):
                return None
        elif a in LINK_ONLY_EXACT or a in LINK_ONLY_SEPARATE or a.startswith(LINK_ONLY_PREFIXES):
            if a in LINK_ONLY_SEPARATE:
                i += 1
        elif a.startswith(BOTH_PREFIXES):
            common.append(a)
            if a in BOTH_SEPARATE:
                if i + 1 >= len(args):
                    return None
                common.append(args[i + 1])
                i += 1
        else:
            return None
        i += 1
    if not sources or _probe(args, sources, cwd):
        return None
    digest = hashlib.sha256("\0".join([cwd, out or "a.out"]).encode()).hexdigest()[:16]
    objdir = os.path.join(state_dir(project), "objects", digest)
    os.makedirs(objdir, exist_ok=True)
    compiles, link = [], list(args)
    for n, idx in enumerate(sources):
        src = args[idx]
        obj = os.path.join(objdir, f"{n}-{os.path.splitext(os.path.basename(src))[0]}.o")
        compiles.append(common + ["-c", src, "-o", obj])
        link[idx] = obj
    return Plan(compiles, link)


#: Dependency options a multi-source compile may carry (each source gets its own <stem>.d, as
#: clang writes them); -MF, -MT, -MQ name one file and are refused.
DEP_EXACT = {"-MD", "-MMD", "-MP"}


def split_compile(args: list[str], cwd: str) -> list[list[str]] | None:
    """``cc OPTIONS -c a.c b.c ...`` as one ``OPTIONS -c <source>`` argument list per source, in
    order, or None when it must run unchanged.  clang writes ``<stem>.o`` (and ``<stem>.d`` under
    -MD) in the working directory for each source, compiles all of them even when one fails, and
    exits 1 if any did; running the lists one after another through autopass-cc does the same, and
    each compile is then a TU the cache, the build log and a session see (lz4's hot library was
    invisible before).  Only the options known to :func:`split` (compile options), ``-c`` and
    -MD/-MMD/-MP are allowed; no ``-o`` (clang refuses it with several outputs)."""
    sources, compile_only = [], False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-c":
            compile_only = True
        elif a in DEP_EXACT:
            pass
        elif a in REFUSE_EXACT or a.startswith(REFUSE_PREFIXES) or a.startswith("-o"):
            return None
        elif not a.startswith("-"):
            if not a.endswith(SOURCE_EXTS):
                return None
            sources.append(i)
        elif a.startswith(BOTH_PREFIXES) and not a.startswith("-Wl,"):
            if a in BOTH_SEPARATE:
                if i + 1 >= len(args):
                    return None
                i += 1
        else:
            return None
        i += 1
    if not compile_only or len(sources) < 2 or _probe(args, sources, cwd):
        return None
    return [[a for j, a in enumerate(args) if j == idx or j not in sources] for idx in sources]
