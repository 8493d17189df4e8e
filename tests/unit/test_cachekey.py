"""Tests for autopass_cc.cachekey: what is in the key, what is out, and the TU id."""

import os

import pytest

from autopass_cc import cachekey
from autopass_cc.invocation import Invocation, classify

IDENT = {"path": "/usr/bin/clang-19", "real": "/usr/lib/llvm-19/bin/clang", "version": "Debian clang version 19.1.7",
         "sha256": "a" * 64, "target": "x86_64-pc-linux-gnu", "is_clang": True, "llvm_major": 19}
PRE = b'# 1 "x.c"\nint f(int x) { return x * 2; }\n'
CWD = "/home/u/proj/build"


def key(argv, pre=PRE, ident=IDENT, cwd=CWD, native_cpu=None, project="/home/u/proj"):
    inv = classify(argv, cwd)
    assert isinstance(inv, Invocation), inv
    return cachekey.compute(inv, ident, cwd, pre, native_cpu=native_cpu, project=project)


BASE = ["-O2", "-c", "x.c", "-o", "x.o"]


def test_deterministic_and_shaped():
    a, b = key(BASE), key(BASE)
    assert a == b
    assert len(a.digest) == 40 and int(a.digest, 16) >= 0
    assert len(a.tu_id) == 40 and a.tu_id != a.digest
    assert a.material["codegen_args"] == ["-O2"]
    assert a.material["source"] == "x.c"
    assert a.material["preprocessed_sha256"]


# ---- the key changes with ... ------------------------------------------------------------------
def test_changes_with_preprocessed_content():
    assert key(BASE).digest != key(BASE, pre=PRE.replace(b"2", b"3")).digest


@pytest.mark.parametrize("other", [
    ["-O3", "-c", "x.c", "-o", "x.o"],
    ["-O2", "-fno-unroll-loops", "-c", "x.c", "-o", "x.o"],
    ["-O2", "-mllvm", "-inline-threshold=500", "-c", "x.c", "-o", "x.o"],
    ["-O2", "-std=c99", "-c", "x.c", "-o", "x.o"],
    ["-O2", "-x", "c++", "-c", "x.c", "-o", "x.o"],
    ["-c", "-O2", "x.c", "-o", "x.o", "-fPIC"],
])
def test_changes_with_codegen_args(other):
    assert key(BASE).digest != key(other).digest


def test_codegen_arg_order_matters():
    assert key(["-O2", "-O3", "-c", "x.c"]).digest != key(["-O3", "-O2", "-c", "x.c"]).digest


@pytest.mark.parametrize("field,value", [
    ("sha256", "b" * 64), ("version", "Debian clang version 19.1.8"), ("target", "aarch64-unknown-linux-gnu")])
def test_changes_with_compiler_identity(field, value):
    assert key(BASE).digest != key(BASE, ident={**IDENT, field: value}).digest


def test_compiler_path_alone_does_not_matter():
    other = {**IDENT, "path": "/usr/lib/llvm-19/bin/clang"}
    assert key(BASE).digest == key(BASE, ident=other).digest


def test_march_native_resolves_host_cpu():
    argv = ["-O2", "-march=native", "-c", "x.c"]
    a = key(argv, native_cpu="znver3:+avx2,+fma")
    b = key(argv, native_cpu="skylake:+avx2,+fma")
    assert a.digest != b.digest
    assert a.digest == key(argv, native_cpu="znver3:+avx2,+fma").digest
    assert "-march=native[znver3:+avx2,+fma]" in a.material["codegen_args"]
    # the host CPU string is only consulted when the flags ask for native
    assert key(BASE, native_cpu="znver3").digest == key(BASE, native_cpu="skylake").digest


def test_cwd_only_when_debug_info():
    assert key(BASE, cwd="/a/build").digest == key(BASE, cwd="/b/build").digest
    g = ["-g", "-O2", "-c", "x.c"]
    assert key(g, cwd="/a/build").digest != key(g, cwd="/b/build").digest
    assert key(g, cwd="/a/build").material["cwd"] == "/a/build"
    g0 = ["-g", "-g0", "-O2", "-c", "x.c"]
    assert key(g0, cwd="/a/build").digest == key(g0, cwd="/b/build").digest


def test_cwd_with_coverage_mapping():
    cov = ["-fprofile-instr-generate", "-fcoverage-mapping", "-c", "x.c"]
    assert key(cov, cwd="/a").digest != key(cov, cwd="/b").digest


def test_output_path_in_key_when_embedded():
    for flags in (["-g", "-gsplit-dwarf"], ["--coverage"]):
        a = key(flags + ["-c", "x.c", "-o", "a.o"])
        b = key(flags + ["-c", "x.c", "-o", "b.o"])
        assert a.digest != b.digest, flags


def test_profile_contents_in_key(tmp_path):
    prof = tmp_path / "app.profdata"
    prof.write_bytes(b"profile v1")
    argv = ["-O2", f"-fprofile-use={prof}", "-c", "x.c"]
    a = key(argv, cwd=str(tmp_path))
    prof.write_bytes(b"profile v2")
    b = key(argv, cwd=str(tmp_path))
    assert a.digest != b.digest
    assert a.tu_id == b.tu_id
    # a directory means DIR/default.profdata
    (tmp_path / "default.profdata").write_bytes(b"dir profile 1")
    d1 = key(["-O2", f"-fprofile-use={tmp_path}", "-c", "x.c"], cwd=str(tmp_path))
    (tmp_path / "default.profdata").write_bytes(b"dir profile 2")
    d2 = key(["-O2", f"-fprofile-use={tmp_path}", "-c", "x.c"], cwd=str(tmp_path))
    assert d1.digest != d2.digest


def test_schema_version_in_key(monkeypatch):
    a = key(BASE)
    monkeypatch.setattr(cachekey, "SCHEMA_VERSION", 999)
    assert key(BASE).digest != a.digest


# ---- the key does not change with ... ----------------------------------------------------------
@pytest.mark.parametrize("other", [
    ["-O2", "-c", "x.c", "-o", "elsewhere/y.o"],
    ["-O2", "-c", "x.c", "-oother.o"],
    ["-O2", "-c", "x.c"],
    ["-O2", "x.c", "-c", "-o", "x.o"],
])
def test_output_path_out_of_key(other):
    assert key(BASE).digest == key(other).digest


def test_depfile_options_out_of_key():
    a = key(["-O2", "-MD", "-MF", "a.d", "-MT", "a.o", "-c", "x.c", "-o", "x.o"])
    b = key(["-O2", "-MMD", "-MP", "-MFb/b.d", "-MT", "other target", "-MQ", "q", "-c", "x.c", "-o", "x.o"])
    assert a.digest == b.digest == key(BASE).digest


def test_warning_options_out_of_key_and_tu_id():
    """Warnings change what clang reports, not what it generates: a build that adds -Wall keeps its
    tuning (lz4's two builds differed only in -W options).  -Wa, (assembler options) is code."""
    a = key(["-O2", "-c", "x.c", "-o", "x.o"])
    b = key(["-O2", "-Wall", "-Wextra", "-Wno-unused", "-Werror=format", "-pedantic", "-w",
             "-fdiagnostics-color=always", "-c", "x.c", "-o", "x.o"])
    assert (a.digest, a.tu_id) == (b.digest, b.tu_id)
    c = key(["-O2", "-Wa,--noexecstack", "-c", "x.c", "-o", "x.o"])
    assert c.digest != a.digest and c.tu_id != a.tu_id


def test_preprocessor_options_out_of_key_when_text_equal():
    a = key(["-O2", "-Iinc", "-DX=1", "-c", "x.c"])
    b = key(["-O2", "-I", "./inc/", "-isystem", "/opt/include", "-D", "X=1", "-DUNUSED", "-include", "cfg.h",
             "-c", "x.c"])
    assert a.digest == b.digest
    assert a.material["codegen_args"] == ["-O2"]


def test_source_path_spelling_out_of_digest_but_in_material():
    # the preprocessed text carries the path (linemarkers); the argument itself is not hashed again
    a = key(["-O2", "-c", "x.c"])
    b = key(["-O2", "-c", "./x.c"])
    assert a.digest == b.digest
    assert b.material["source"] == "./x.c"


# ---- the TU id ---------------------------------------------------------------------------------
def test_tu_id_stable_across_content_edits():
    a, b = key(BASE), key(BASE, pre=b"int changed;\n")
    assert a.digest != b.digest
    assert a.tu_id == b.tu_id


def test_tu_id_names_source_and_args():
    assert key(BASE).tu_id != key(["-O2", "-c", "y.c"]).tu_id
    assert key(BASE).tu_id != key(["-O3", "-c", "x.c"]).tu_id


def test_tu_id_relative_to_project():
    # same file reached from two build directories of the same project (no -g: cwd not in it)
    a = key(["-O2", "-c", "../src/x.c"], cwd="/p/build1", project="/p")
    b = key(["-O2", "-c", "/p/src/x.c"], cwd="/p/build2", project="/p")
    assert a.tu_id == b.tu_id
    # the same relative layout in another checkout is the same TU
    c = key(["-O2", "-c", "../src/x.c"], cwd="/q/build1", project="/q")
    assert a.tu_id == c.tu_id


# ---- preprocess_args ---------------------------------------------------------------------------
def test_preprocess_args_drop_output_and_deps():
    inv = classify(["-O2", "-MD", "-MF", "x.d", "-MTt", "-I", "inc", "-DA=1", "-c", "x.c", "-o", "x.o",
                    "--output=y.o", "-MJ", "c.json"], ".")
    assert cachekey.preprocess_args(inv) == ["-O2", "-I", "inc", "-DA=1", "x.c", "-E"]


def test_preprocess_args_keep_odd_source_names():
    inv = classify(["-c", "-x", "c", "-ofile.c"], ".")
    # "-ofile.c" is the output option, not a source: nothing to compile
    assert not isinstance(inv, Invocation)
    inv = classify(["-c", "dir with space/ö.c", "-o", "o.o"], ".")
    assert cachekey.preprocess_args(inv) == ["dir with space/ö.c", "-E"]


def test_unicode_and_surrogate_paths_hash():
    odd = os.fsdecode(b"src/\xff\xfe.c")  # not UTF-8: surrogate-escaped, as os.listdir returns it
    k = key(["-g", "-c", odd], cwd=os.fsdecode(b"/tmp/\xe9"))
    assert len(k.digest) == 40
