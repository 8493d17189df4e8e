"""argv -> Invocation (one translation unit compiled to one object) | Skip(reason).

Pure: no processes, no file writes.  Only ``-c`` of exactly one C or C++ source into one object
file is intercepted; everything else passes through to the real compiler unchanged.  The cases
follow ccache's argument processing (its manual, "Cache statistics": "called for link",
"called for preprocessing", "multiple source files", "output to stdout", "compiler produced no
output", "unsupported compiler option", "unsupported source language") so that its users find
the same behaviour.

Link invocations are recognised separately (:func:`classify_link`) so the build log can record
them: a session relinks the program from that record.
"""

from __future__ import annotations

import os
from collections import namedtuple

C_EXTS = {".c": "c"}
#: clang's own list (clang/lib/Driver/Types.cpp, ``lookupTypeForExtension``); matched case-sensitively.
CXX_EXTS = {".cc": "c++", ".cpp": "c++", ".cxx": "c++", ".c++": "c++", ".C": "c++", ".cp": "c++", ".CPP": "c++",
            ".CC": "c++", ".CXX": "c++", ".C++": "c++"}
SOURCE_LANGS = {**C_EXTS, **CXX_EXTS}
#: -x values we intercept.
X_LANGS = {"c": "c", "c++": "c++"}
#: Files a link takes as inputs.
LINK_INPUT_EXTS = (".o", ".a", ".so", ".obj", ".lo", ".lib")

#: Options that take the next argv element as their value (clang's Options.td, "Separate" and
#: "JoinedOrSeparate" kinds that builds use).  A value joined to the option (``-Iinc``) is also
#: understood for the JoinedOrSeparate ones.
SEPARATE_ARG = {
    "-o", "-MF", "-MT", "-MQ", "-MJ", "-I", "-isystem", "-iquote", "-idirafter", "-include", "-imacros",
    "-D", "-U", "-x", "-arch", "-target", "-Xlinker", "-Xassembler", "-Xpreprocessor",
    "-mllvm", "-L", "-isysroot", "--sysroot", "-iprefix", "-iwithprefix", "-iwithprefixbefore",
    "-include-pch", "-F", "-u", "-z", "-T", "-ivfsoverlay", "-serialize-diagnostics",
    "-dependency-file", "-e", "--param", "-resource-dir", "-imultilib", "-cxx-isystem",
    "-working-directory", "--target", "-Xclang", "-Xarch_host", "-Xarch_device", "-aux-triple",
    "-fmodule-file", "-fprebuilt-module-path", "-l", "-G", "-b", "-V", "-B", "--output",
}
JOINED_OR_SEPARATE = {"-o", "-MF", "-MT", "-MQ", "-MJ", "-I", "-D", "-U", "-x", "-L", "-F", "-u", "-T", "-l",
                      "-include", "-imacros", "-isystem", "-iquote", "-idirafter", "-e", "-z", "-G", "-B"}

#: Options that make the call something other than "compile one TU to an object".
MODE_SKIPS = {
    "-E": "preprocessing", "-M": "preprocessing", "-MM": "preprocessing", "-S": "assembly output",
    "-fsyntax-only": "syntax check", "-emit-llvm": "LLVM IR output", "-###": "driver dry run",
    "--analyze": "static analysis", "-save-temps": "save-temps", "-v": "verbose driver",
    "--version": "probe", "-dumpmachine": "probe", "-dumpversion": "probe", "-dumpspecs": "probe",
    "--help": "probe", "-help": "probe", "-flto": "LTO bitcode output", "-fembed-bitcode": "embedded bitcode",
    "-Xclang": "unsupported option -Xclang", "-Xpreprocessor": "unsupported option -Xpreprocessor",
    "-arch": "multiple architectures", "--precompile": "module precompile", "-fmodules": "modules",
    "-ftime-trace": "time trace", "-cc1": "internal cc1 call", "-cc1as": "internal cc1 call",
    # clang's long spellings of the same modes (Options.td aliases)
    "--preprocess": "preprocessing", "--dependencies": "preprocessing", "--user-dependencies": "preprocessing",
    "--assemble": "assembly output", "--save-temps": "save-temps", "--verbose": "verbose driver",
    "--": "unsupported option --",
    # a PCH must match the options it was built with; a tuned pipeline would change them
    "-include-pch": "precompiled header",
}
MODE_SKIP_PREFIXES = (
    ("-print-", "probe"), ("--print-", "probe"), ("-flto=", "LTO bitcode output"),
    ("-fplugin", "unsupported option -fplugin"), ("-fpass-plugin", "unsupported option -fpass-plugin"),
    ("-save-temps=", "save-temps"), ("-fmodules-", "modules"), ("--analyze", "static analysis"),
    ("-fdump-", "dump"), ("-emit-", "non-object output"), ("-fsave-optimization-record", "remarks output"),
    ("-foptimization-record-file", "remarks output"), ("-specs", "unsupported option -specs"),
    ("--specs", "unsupported option -specs"), ("-fembed-bitcode=", "embedded bitcode"),
    ("-Wp,-M", "unsupported option -Wp,-M"), ("--driver-mode=cpp", "preprocessing"),
    ("--driver-mode=cl", "unsupported option --driver-mode=cl"),
    ("--driver-mode=flang", "unsupported option --driver-mode=flang"),
)
#: Dependency-file options: they never change the object, so they are out of the cache key.
DEP_FLAGS = {"-MD", "-MMD", "-MP", "-MG", "-MV", "--write-dependencies", "--write-user-dependencies"}
DEP_ARG_FLAGS = {"-MF", "-MT", "-MQ", "-MJ"}
#: Preprocessor-only options: their effect is in the preprocessed text, so out of the cache key
#: (ccache's "preprocessor mode" rule).
PREPROC_ARG_FLAGS = {"-I", "-isystem", "-iquote", "-idirafter", "-include", "-imacros", "-D", "-U",
                     "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-cxx-isystem", "-isysroot",
                     "-ivfsoverlay"}


# Value types are namedtuples: importing the dataclasses module costs ~6 ms (it imports inspect),
# paid by every compile (benchmarks/overhead.py).
class Skip(namedtuple("Skip", "reason is_link", defaults=(False,))):
    """Not one TU compile: pass through unchanged.  ``reason`` is a short stats label."""
    __slots__ = ()


class Invocation(namedtuple("Invocation", "args source output lang codegen_args dep_args has_debug_info uses_native source_index", defaults=(False, False, -1,))):
    """One intercepted compile: ``args`` is the argv after the compiler, exactly as given.

    ``source`` and ``output`` are as written on the command line (relative to the cwd of the
    call); ``lang`` is ``"c"`` or ``"c++"``; ``codegen_args`` are the arguments that can change
    the object besides the preprocessed text (no ``-o``, dependency-file, ``-c``, ``-I``/``-D``...
    options, no source), in order; ``dep_args`` are the dependency-file options, in order.
    """
    __slots__ = ()



def tokenize_gnu(text: str) -> list[str]:
    """Split response-file text as LLVM's ``cl::TokenizeGNUCommandLine`` does (clang's driver on
    Linux): whitespace separates, ``'`` and ``"`` quote, a backslash escapes the next character
    (inside quotes too), an empty token (``""``) is dropped, an unclosed quote ends at EOF."""
    out: list[str] = []
    tok: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            tok.append(text[i + 1])
            i += 2
            continue
        if c in "'\"":
            i += 1
            while i < n and text[i] != c:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                tok.append(text[i])
                i += 1
            i += 1
            continue
        if c in " \t\r\n":
            if tok:
                out.append("".join(tok))
                tok = []
            i += 1
            continue
        tok.append(c)
        i += 1
    if tok:
        out.append("".join(tok))
    return out


def expand_response_files(args: list[str], cwd: str = ".", depth: int = 0) -> list[str] | None:
    """Expand ``@file`` arguments (GNU quoting, as clang's driver reads them); None when a
    response file cannot be read (the call then passes through)."""
    out = []
    for a in args:
        if a.startswith("@") and len(a) > 1 and depth < 8:
            path = os.path.join(cwd, a[1:])
            try:
                with open(path, encoding="utf-8", errors="surrogateescape") as f:
                    inner = tokenize_gnu(f.read())
            except OSError:
                return None
            # clang 19's driver resolves a nested @file against the working directory, not the
            # directory of the file that names it (checked with clang-19 -E).
            sub = expand_response_files(inner, cwd, depth + 1)
            if sub is None:
                return None
            out += sub
        else:
            out.append(a)
    return out


def _lang_of(path: str, forced: str | None, cplusplus: bool = False) -> str | None:
    if forced is not None:
        return X_LANGS.get(forced)
    lang = SOURCE_LANGS.get(os.path.splitext(path)[1])
    if lang == "c" and cplusplus:
        return "c++"  # clang++ compiles a .c file as C++ (with a deprecation warning)
    return lang


#: Extensions clang takes as sources of a language we do not intercept (everything else unknown is
#: a linker input for the driver).
_OTHER_SOURCE_EXTS = (".i", ".ii", ".m", ".mm", ".M", ".mi", ".mii", ".s", ".S", ".sx", ".cu", ".cl",
                      ".asm", ".h", ".hh", ".hpp", ".hxx", ".H", ".cppm", ".ixx", ".pcm", ".bc", ".ll",
                      ".hip", ".f", ".f90", ".F", ".F90")


#: Directories where build systems compile their configuration checks: CMake's try_compile
#: (CMakeScratch, CMakeTmp) and Meson's (meson-private/tmpXXXX); autoconf's are conftest* files.
PROBE_DIRS = ("CMakeScratch", "CMakeTmp", "meson-private")


def is_probe(cwd: str, paths) -> bool:
    """True when a compile run in ``cwd`` on ``paths`` (sources or outputs) is a configuration
    check -- a path with a ``conftest*`` part or one of :data:`PROBE_DIRS` -- nothing to tune or
    record (it runs hundreds of times, in directories removed after)."""
    for where in [cwd] + [os.path.join(cwd, p) for p in paths]:
        for part in where.split(os.sep):
            if part.startswith("conftest") or part in PROBE_DIRS:
                return True
    return False


def classify(args: list[str], cwd: str = ".", cplusplus: bool = False) -> Invocation | Skip:
    """Classify the arguments that follow the compiler name.

    ``cplusplus``: the driver runs in C++ mode (``clang++``, ``autopass-c++``, a ``c++`` shim), where
    a ``.c`` file is compiled as C++; ``--driver-mode=g++``/``gcc`` in ``args`` overrides it.

    Returns an Invocation only for ``-c`` of exactly one C/C++ source to one object file; else a
    Skip whose reason is one of: "no input", "probe", "preprocessing", "link", "multiple source
    files", "output to stdout", "output to /dev/null", "input from stdin", "input from /dev/null",
    "unsupported source language", "unsupported option ...", "missing option argument", "response
    file", "response file unreadable", "non-source input", and the MODE_SKIPS labels."""
    if not args:
        return Skip("no input")
    expanded = expand_response_files(args, cwd)
    if expanded is None:
        return Skip("response file unreadable")
    for a in expanded:
        if a.startswith("--driver-mode="):
            cplusplus = a == "--driver-mode=g++"
    compile_only = False
    output = None
    forced_lang = None
    sources: list[tuple[int, str, str]] = []   # (index in expanded, path, lang)
    other_inputs = 0
    unsupported = False     # an input of a language we do not intercept (assembler, Objective-C ...)
    codegen: list[str] = []
    deps: list[str] = []
    debug = native = False
    i = 0
    n = len(expanded)
    while i < n:
        a = expanded[i]
        if a in MODE_SKIPS:
            return Skip(MODE_SKIPS[a])
        for prefix, reason in MODE_SKIP_PREFIXES:
            if a.startswith(prefix):
                return Skip(reason)
        if a == "-":
            return Skip("input from stdin")
        if a == os.devnull:  # option values never reach here: they are consumed with their option
            return Skip("input from /dev/null")  # a probe (``-x c -c /dev/null``), nothing to tune
        if a in ("-c", "--compile"):
            compile_only = True
            i += 1
            continue
        if a in SEPARATE_ARG:
            if i + 1 >= n:
                return Skip("missing option argument")
            val = expanded[i + 1]
            if a in ("-o", "--output"):
                output = val
            elif a == "-x":
                forced_lang = None if val == "none" else val
                codegen += [a, val]
            elif a in DEP_ARG_FLAGS:
                deps += [a, val]
            elif a in PREPROC_ARG_FLAGS:
                pass
            else:
                codegen += [a, val]
            i += 2
            continue
        if a.startswith("-"):
            # Joined value (``-Iinc``, ``-ofoo.o``, ``-MFx.d``); no two JOINED_OR_SEPARATE names
            # are prefixes of one another, so at most one matches.
            joined = next((p for p in JOINED_OR_SEPARATE if a.startswith(p) and len(a) > len(p)), None)
            if a.startswith("--output="):
                output = a[len("--output="):]
            elif joined in DEP_ARG_FLAGS:
                deps.append(a)
            elif joined == "-o":
                output = a[2:]
            elif joined == "-x":
                forced_lang = None if a == "-xnone" else a[2:]
                codegen.append(a)
            elif joined in PREPROC_ARG_FLAGS:
                pass
            elif a in DEP_FLAGS:
                deps.append(a)
            elif a.startswith("--driver-mode="):
                pass  # folded into ``cplusplus`` above
            else:
                if a.startswith("-g") and a not in ("-g0", "-gno-column-info"):
                    debug = True
                if a == "-g0":
                    debug = False
                if "=native" in a:
                    native = True
                codegen.append(a)
            i += 1
            continue
        # A positional argument: an input file.
        lang = _lang_of(a, forced_lang, cplusplus)
        if lang is not None:
            sources.append((i, a, lang))
        elif forced_lang is not None or os.path.splitext(a)[1] in _OTHER_SOURCE_EXTS:
            unsupported = True
        else:
            other_inputs += 1
        i += 1
    if not compile_only:
        if not sources and not other_inputs and not unsupported:
            return Skip("no input")
        return Skip("link", is_link=True)
    if unsupported:
        return Skip("unsupported source language")
    if not sources:
        return Skip("no input" if not other_inputs else "non-source input")
    if len(sources) > 1:
        return Skip("multiple source files")
    if other_inputs:
        return Skip("non-source input")
    if output == "-":
        return Skip("output to stdout")
    if output is not None and output == os.devnull:
        return Skip("output to /dev/null")
    if expanded != list(args):
        return Skip("response file")  # run as given; the expanded form is only read to classify
    idx, src, lang = sources[0]
    if output is None:
        output = os.path.splitext(os.path.basename(src))[0] + ".o"
    return Invocation(args=tuple(args), source=src, output=output, lang=lang, codegen_args=tuple(codegen),
                      dep_args=tuple(deps), has_debug_info=debug, uses_native=native, source_index=idx)


class Link(namedtuple("Link", "output inputs", defaults=((),))):
    """A link call worth recording: ``output`` (as written; default ``a.out``) and ``inputs``
    (object files, archives and shared objects named on the command line, as written)."""
    __slots__ = ()


def classify_record(rec: dict) -> Invocation | Skip:
    """Classify a compile record of the build log (buildlog.py) exactly as the wrapper did: same
    arguments, directory and driver mode (``cplusplus``, recorded; older records: guessed from the
    compiler's name), so the cache key a session computes equals the wrapper's."""
    cplusplus = rec.get("cplusplus")
    if cplusplus is None:
        cplusplus = "++" in os.path.basename(rec.get("compiler", ""))
    return classify(list(rec["args"]), rec["cwd"], cplusplus=bool(cplusplus))


def classify_link(args: list[str], cwd: str = ".") -> Link | None:
    """The Link a pass-through call performs, or None (no object inputs: nothing to relink).
    Pure; response files are expanded for reading only."""
    expanded = expand_response_files(args, cwd) or args
    output, inputs = "a.out", []
    i = 0
    while i < len(expanded):
        a = expanded[i]
        if a in SEPARATE_ARG and i + 1 < len(expanded):
            if a in ("-o", "--output"):
                output = expanded[i + 1]
            i += 2
            continue
        if a.startswith("--output="):
            output = a[len("--output="):]
        elif a.startswith("-o") and len(a) > 2:
            output = a[2:]
        elif not a.startswith("-") and (a.endswith(LINK_INPUT_EXTS) or ".so." in os.path.basename(a)):
            inputs.append(a)
        i += 1
    if not any(x.endswith((".o", ".obj", ".lo", ".a")) for x in inputs):
        return None
    return Link(output=output, inputs=tuple(inputs))
