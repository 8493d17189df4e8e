"""Table-driven tests for autopass_cc.invocation: argv -> Invocation | Skip, and classify_link."""

import os

import pytest

from autopass_cc.invocation import (Invocation, Link, Skip, classify, classify_link, expand_response_files,
                                   tokenize_gnu)

# --------------------------------------------------------------------------------------------
# Pass-through cases: (id, argv, expected reason, expected is_link)
# --------------------------------------------------------------------------------------------
PASS_THROUGH = [
    ("link", ["a.o", "b.o", "-o", "prog"], "link", True),
    ("link-with-source", ["main.c", "-o", "prog"], "link", True),
    ("link-libs", ["main.o", "-lm", "-L/opt/lib", "-o", "prog"], "link", True),
    ("link-shared", ["-shared", "a.o", "-o", "libx.so"], "link", True),
    ("link-asm-source", ["start.s", "main.o", "-o", "prog"], "link", True),
    ("preprocess", ["-E", "x.c"], "preprocessing", False),
    ("preprocess-with-c", ["-c", "-E", "x.c", "-o", "x.i"], "preprocessing", False),
    ("deps-only-M", ["-M", "x.c"], "preprocessing", False),
    ("deps-only-MM", ["-MM", "-c", "x.c"], "preprocessing", False),
    ("long-preprocess", ["--preprocess", "x.c"], "preprocessing", False),
    ("assembly", ["-S", "x.c", "-o", "x.s"], "assembly output", False),
    ("assembly-with-c", ["-c", "-S", "x.c"], "assembly output", False),
    ("version", ["--version"], "probe", False),
    ("dumpversion", ["-dumpversion"], "probe", False),
    ("verbose", ["-v"], "verbose driver", False),
    ("verbose-compile", ["-v", "-c", "x.c"], "verbose driver", False),
    ("dumpmachine", ["-dumpmachine"], "probe", False),
    ("dry-run", ["-###", "-c", "x.c"], "driver dry run", False),
    ("print-search-dirs", ["-print-search-dirs"], "probe", False),
    ("print-file-name", ["-print-file-name=libc.so"], "probe", False),
    ("print-prog-name", ["-print-prog-name=ld"], "probe", False),
    ("print-resource-dir", ["--print-resource-dir"], "probe", False),
    ("help", ["--help"], "probe", False),
    ("x-assembler", ["-x", "assembler", "-c", "x.s"], "unsupported source language", False),
    ("x-assembler-cpp", ["-x", "assembler-with-cpp", "-c", "x.S"], "unsupported source language", False),
    ("x-objc", ["-x", "objective-c", "-c", "x.m"], "unsupported source language", False),
    ("x-objc-joined", ["-xobjective-c", "-c", "x.m"], "unsupported source language", False),
    ("x-c-header", ["-x", "c-header", "-c", "x.h"], "unsupported source language", False),
    ("x-cxx-header", ["-x", "c++-header", "-c", "x.hpp", "-o", "x.pch"], "unsupported source language", False),
    ("asm-ext", ["-c", "x.s"], "unsupported source language", False),
    ("asm-cpp-ext", ["-c", "x.S"], "unsupported source language", False),
    ("objc-ext", ["-c", "x.m"], "unsupported source language", False),
    ("preprocessed-ext", ["-c", "x.i"], "unsupported source language", False),
    ("header-pch", ["-c", "x.h"], "unsupported source language", False),
    ("cuda", ["-c", "k.cu"], "unsupported source language", False),
    ("stdin", ["-x", "c", "-c", "-", "-o", "x.o"], "input from stdin", False),
    ("stdin-no-x", ["-c", "-"], "input from stdin", False),
    ("stdout", ["-c", "x.c", "-o", "-"], "output to stdout", False),
    ("devnull-input", ["-x", "c", "-c", os.devnull, "-o", "x.o"], "input from /dev/null", False),
    ("devnull", ["-c", "x.c", "-o", os.devnull], "output to /dev/null", False),
    ("several-sources", ["-c", "a.c", "b.c"], "multiple source files", False),
    ("several-mixed", ["-c", "a.c", "b.cpp", "-O2"], "multiple source files", False),
    ("no-args", [], "no input", False),
    ("no-input-flags", ["-O2", "-Wall"], "no input", False),
    ("no-input-compile", ["-c", "-O2"], "no input", False),
    ("object-input-c", ["-c", "a.o"], "non-source input", False),
    ("source-and-object-c", ["-c", "a.c", "b.o"], "non-source input", False),
    ("unknown-ext-c", ["-c", "x.inc"], "non-source input", False),
    ("syntax-only", ["-fsyntax-only", "x.c"], "syntax check", False),
    ("syntax-only-c", ["-c", "-fsyntax-only", "x.c"], "syntax check", False),
    ("emit-llvm", ["-c", "-emit-llvm", "x.c", "-o", "x.bc"], "LLVM IR output", False),
    ("emit-ast", ["-emit-ast", "x.c"], "non-object output", False),
    ("flto", ["-flto", "-c", "x.c"], "LTO bitcode output", False),
    ("flto-thin", ["-flto=thin", "-c", "x.c"], "LTO bitcode output", False),
    ("xclang", ["-Xclang", "-load", "-Xclang", "p.so", "-c", "x.c"], "unsupported option -Xclang", False),
    ("fplugin", ["-fplugin=./p.so", "-c", "x.c"], "unsupported option -fplugin", False),
    ("fpass-plugin", ["-fpass-plugin=./p.so", "-c", "x.c"], "unsupported option -fpass-plugin", False),
    ("save-temps", ["-save-temps", "-c", "x.c"], "save-temps", False),
    ("save-temps-obj", ["-save-temps=obj", "-c", "x.c"], "save-temps", False),
    ("analyze", ["--analyze", "x.c"], "static analysis", False),
    ("embed-bitcode", ["-fembed-bitcode=all", "-c", "x.c"], "embedded bitcode", False),
    ("wp-md", ["-Wp,-MD,x.d", "-c", "x.c"], "unsupported option -Wp,-M", False),
    ("double-dash", ["-c", "--", "x.c"], "unsupported option --", False),
    ("missing-arg", ["-c", "x.c", "-o"], "missing option argument", False),
    ("arch", ["-arch", "x86_64", "-c", "x.c"], "multiple architectures", False),
    ("cc1", ["-cc1", "-emit-obj", "x.c"], "internal cc1 call", False),
    ("driver-mode-cpp", ["--driver-mode=cpp", "x.c"], "preprocessing", False),
    ("include-pch", ["-include-pch", "pre.pch", "-c", "x.c"], "precompiled header", False),
]


@pytest.mark.parametrize("argv,reason,is_link", [p[1:] for p in PASS_THROUGH], ids=[p[0] for p in PASS_THROUGH])
def test_pass_through(argv, reason, is_link):
    got = classify(argv, ".")
    assert isinstance(got, Skip), got
    assert (got.reason, got.is_link) == (reason, is_link)


def test_response_file_passes_through(tmp_path):
    rsp = tmp_path / "args.rsp"
    rsp.write_text('-O2 -DNAME="a b" -c x.c -o x.o\n')
    assert classify(["@" + str(rsp)], str(tmp_path)) == Skip("response file")
    # one argument in the file: same length as argv, still a response file
    one = tmp_path / "one.rsp"
    one.write_text("-O2\n")
    assert classify(["@one.rsp", "-c", "x.c"], str(tmp_path)) == Skip("response file")
    # a response file that changes the mode is classified by what it contains
    pre = tmp_path / "pre.rsp"
    pre.write_text("-E x.c\n")
    assert classify(["@pre.rsp"], str(tmp_path)) == Skip("preprocessing")


def test_response_file_unreadable(tmp_path):
    assert classify(["@missing.rsp", "-c", "x.c"], str(tmp_path)) == Skip("response file unreadable")


def test_expand_response_files_quoting_and_nesting(tmp_path):
    (tmp_path / "inner.rsp").write_text("-DINNER=1 'single quoted arg'\n")
    (tmp_path / "outer.rsp").write_text('-DX="a b" @inner.rsp back\\ slash\n')
    assert expand_response_files(["-c", "@outer.rsp"], str(tmp_path)) == [
        "-c", "-DX=a b", "-DINNER=1", "single quoted arg", "back slash"]


@pytest.mark.parametrize("text,tokens", [
    ("-O2  -c\tx.c\n", ["-O2", "-c", "x.c"]),
    ('-DA="x\\y" -DB=\'p\\\'q\' -DC=a\\ b "" -DE=a"b c"d', ["-DA=xy", "-DB=p'q", "-DC=a b", "-DE=ab cd"]),
    ('-DD="unterminated', ["-DD=unterminated"]),
    ("ü 'dir with space/f.c'", ["ü", "dir with space/f.c"]),
])
def test_tokenize_gnu_matches_clang(text, tokens):
    # expectations checked against clang-19 -E -dM @file
    assert tokenize_gnu(text) == tokens


def test_nested_response_file_is_relative_to_cwd(tmp_path):
    (tmp_path / "rsp").mkdir()
    (tmp_path / "rsp" / "outer.rsp").write_text("@inner.rsp\n")
    (tmp_path / "rsp" / "inner.rsp").write_text("-DWRONG\n")
    (tmp_path / "inner.rsp").write_text("-DRIGHT\n")
    assert expand_response_files(["@rsp/outer.rsp"], str(tmp_path)) == ["-DRIGHT"]


def test_response_file_link_is_still_a_link(tmp_path):
    (tmp_path / "objs.rsp").write_text("a.o b.o\n")
    got = classify(["@objs.rsp", "-o", "prog"], str(tmp_path))
    assert got == Skip("link", is_link=True)
    assert classify_link(["@objs.rsp", "-o", "prog"], str(tmp_path)) == Link("prog", ("a.o", "b.o"))


# --------------------------------------------------------------------------------------------
# Intercepted cases: (id, argv, source, output, lang, codegen_args, dep_args)
# --------------------------------------------------------------------------------------------
INTERCEPTED = [
    ("plain", ["-c", "x.c"], "x.c", "x.o", "c", (), ()),
    ("default-output-basename", ["-c", "src/dir/x.c"], "src/dir/x.c", "x.o", "c", (), ()),
    ("output", ["-O2", "-c", "x.c", "-o", "out.o"], "x.c", "out.o", "c", ("-O2",), ()),
    ("output-joined", ["-c", "x.c", "-ofoo.o"], "x.c", "foo.o", "c", (), ()),
    ("output-long", ["-c", "x.c", "--output=long.o"], "x.c", "long.o", "c", (), ()),
    ("output-long-separate", ["-c", "x.c", "--output", "long.o"], "x.c", "long.o", "c", (), ()),
    ("source-before-c", ["x.c", "-c", "-o", "obj/x.o"], "x.c", "obj/x.o", "c", (), ()),
    ("depfile", ["-O2", "-MD", "-MF", "f.d", "-MT", "t.o", "-c", "x.c", "-o", "x.o"],
     "x.c", "x.o", "c", ("-O2",), ("-MD", "-MF", "f.d", "-MT", "t.o")),
    ("depfile-joined", ["-MMD", "-MP", "-MFf.d", "-MTt", "-MQq", "-c", "x.c"],
     "x.c", "x.o", "c", (), ("-MMD", "-MP", "-MFf.d", "-MTt", "-MQq")),
    ("depfile-long", ["--write-dependencies", "-c", "x.c"], "x.c", "x.o", "c", (), ("--write-dependencies",)),
    ("compile-db", ["-MJ", "x.json", "-c", "x.c"], "x.c", "x.o", "c", (), ("-MJ", "x.json")),
    ("preprocessor-options-out",
     ["-I", "inc", "-Iinc2", "-isystem", "/sys", "-isystem/sys2", "-iquote", "q", "-DA=1", "-D", "B",
      "-UC", "-U", "D", "-include", "pre.h", "-imacros", "m.h", "-idirafter", "late", "-c", "x.c"],
     "x.c", "x.o", "c", (), ()),
    ("codegen-kept-in-order",
     ["-O3", "-march=x86-64-v3", "-fno-strict-aliasing", "-std=c11", "-Wall", "-mllvm", "-inline-threshold=500",
      "-c", "x.c", "-fPIC", "-g"],
     "x.c", "x.o", "c",
     ("-O3", "-march=x86-64-v3", "-fno-strict-aliasing", "-std=c11", "-Wall", "-mllvm", "-inline-threshold=500",
      "-fPIC", "-g"), ()),
    ("x-c-inc", ["-x", "c", "-c", "file.inc"], "file.inc", "file.o", "c", ("-x", "c"), ()),
    ("x-joined", ["-xc++", "-c", "file.inc"], "file.inc", "file.o", "c++", ("-xc++",), ()),
    ("x-none-resets", ["-x", "c", "-x", "none", "-c", "y.cpp"], "y.cpp", "y.o", "c++",
     ("-x", "c", "-x", "none"), ()),
    ("cc", ["-c", "a.cc"], "a.cc", "a.o", "c++", (), ()),
    ("cpp", ["-c", "a.cpp"], "a.cpp", "a.o", "c++", (), ()),
    ("cxx", ["-c", "a.cxx"], "a.cxx", "a.o", "c++", (), ()),
    ("c++", ["-c", "a.c++"], "a.c++", "a.o", "c++", (), ()),
    ("C", ["-c", "a.C"], "a.C", "a.o", "c++", (), ()),
    ("CC", ["-c", "a.CC"], "a.CC", "a.o", "c++", (), ()),
    ("CPP", ["-c", "a.CPP"], "a.CPP", "a.o", "c++", (), ()),
    ("cp", ["-c", "a.cp"], "a.cp", "a.o", "c++", (), ()),
    ("quoted-define", ["-DNAME=a b", "-DSTR=\"x y\"", "-c", "x.c"], "x.c", "x.o", "c", (), ()),
    ("unicode-path", ["-c", "src/héllo wörld/naïve file.c", "-o", "out dir/ö.o"],
     "src/héllo wörld/naïve file.c", "out dir/ö.o", "c", (), ()),
    ("space-path-include", ["-I", "my includes", "-c", "my file.c"], "my file.c", "my file.o", "c", (), ()),
    ("B-prefix", ["-B", "/opt/bin", "-c", "x.c"], "x.c", "x.o", "c", ("-B", "/opt/bin"), ()),
    ("linker-flags-ignored-but-kept", ["-c", "x.c", "-Wl,--as-needed"], "x.c", "x.o", "c", ("-Wl,--as-needed",), ()),
    ("driver-mode-gxx", ["--driver-mode=g++", "-c", "x.c"], "x.c", "x.o", "c++", (), ()),
]


@pytest.mark.parametrize("argv,source,output,lang,codegen,deps", [p[1:] for p in INTERCEPTED],
                         ids=[p[0] for p in INTERCEPTED])
def test_intercepted(argv, source, output, lang, codegen, deps):
    inv = classify(argv, ".")
    assert isinstance(inv, Invocation), inv
    assert inv.args == tuple(argv)
    assert inv.source == source
    assert inv.output == output
    assert inv.lang == lang
    assert inv.codegen_args == codegen
    assert inv.dep_args == deps
    assert argv[inv.source_index] == source
    for a in inv.codegen_args:
        assert a not in ("-o", "-c", "-MF", "-MT", "-I", "-D") and not a.startswith(("-I", "-D", "-MF", "-o"))


def test_cplusplus_driver_compiles_c_as_cxx():
    assert classify(["-c", "x.c"], ".", cplusplus=True).lang == "c++"
    assert classify(["-x", "c", "-c", "x.c"], ".", cplusplus=True).lang == "c"
    assert classify(["--driver-mode=gcc", "-c", "x.c"], ".", cplusplus=True).lang == "c"


@pytest.mark.parametrize("argv,debug,native", [
    (["-c", "x.c"], False, False),
    (["-g", "-c", "x.c"], True, False),
    (["-ggdb3", "-c", "x.c"], True, False),
    (["-gline-tables-only", "-c", "x.c"], True, False),
    (["-g", "-g0", "-c", "x.c"], False, False),
    (["-march=native", "-c", "x.c"], False, True),
    (["-mtune=native", "-c", "x.c"], False, True),
    (["-mcpu=native", "-g", "-c", "x.c"], True, True),
])
def test_debug_and_native_flags(argv, debug, native):
    inv = classify(argv, ".")
    assert (inv.has_debug_info, inv.uses_native) == (debug, native)


def test_classify_is_pure(tmp_path):
    before = sorted(os.listdir(tmp_path))
    classify(["-MD", "-MF", str(tmp_path / "x.d"), "-c", str(tmp_path / "x.c"), "-o", str(tmp_path / "x.o")],
             str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == before


# --------------------------------------------------------------------------------------------
# classify_link
# --------------------------------------------------------------------------------------------
LINKS = [
    ("objects", ["a.o", "b.o", "-o", "prog"], Link("prog", ("a.o", "b.o"))),
    ("default-a.out", ["a.o"], Link("a.out", ("a.o",))),
    ("joined-output", ["a.o", "-oprog"], Link("prog", ("a.o",))),
    ("long-output", ["a.o", "--output=prog"], Link("prog", ("a.o",))),
    ("archives-and-shared", ["main.o", "libx.a", "liby.so", "libz.so.1", "-lm", "-L", "/opt", "-o", "p"],
     Link("p", ("main.o", "libx.a", "liby.so", "libz.so.1"))),
    ("separate-values-skipped", ["-Xlinker", "foo.o", "a.o", "-o", "p"], Link("p", ("a.o",))),
    ("no-objects", ["main.c", "-o", "prog"], None),
    ("only-shared", ["liby.so", "-o", "prog"], None),
    ("flags-only", ["-O2"], None),
]


@pytest.mark.parametrize("argv,expected", [p[1:] for p in LINKS], ids=[p[0] for p in LINKS])
def test_classify_link(argv, expected):
    assert classify_link(argv, ".") == expected
