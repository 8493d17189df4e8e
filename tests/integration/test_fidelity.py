"""Fidelity with real clang-19: with no tuned pipeline in the cache, a compile through autopass-cc
(direct, launcher, masquerade, CMake toolchain file) produces exactly what plain clang-19 produces:
the same object bytes, dependency files, diagnostics, exit codes and probe output.

Every test uses a fresh ``AUTOPASS_CACHE_DIR`` under tmp_path and the console scripts by full path
(the sysconfig scripts directory; PATH may reach them only through slow pyenv shims).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = Path(sysconfig.get_path("scripts"))
AP_CC = str(SCRIPTS / "autopass-cc")
AP_CXX = str(SCRIPTS / "autopass-c++")
CLANG = shutil.which("clang-19")
CLANGXX = shutil.which("clang++-19")
TOOLCHAIN_FILE = REPO / "shims" / "autopass.cmake"

pytestmark = [
    pytest.mark.skipif(CLANG is None or CLANGXX is None, reason="clang-19 not installed"),
    pytest.mark.skipif(not os.path.exists(AP_CC), reason="autopass-cc console script not installed (pip install -e .)"),
]

TIMEOUT = 120


@pytest.fixture
def env(tmp_path):
    """A clean environment: fresh cache, no user config, no autopass overrides."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("AUTOPASS_") and k not in ("CCC_OVERRIDE_OPTIONS", "MAKEFLAGS", "MFLAGS")}
    e["AUTOPASS_CACHE_DIR"] = str(tmp_path / "cache")
    e["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    e["LC_ALL"] = "C"
    return e


@pytest.fixture
def work(tmp_path):
    """A project directory (with an autopass.toml, so the build log is written) holding test sources."""
    d = tmp_path / "proj"
    d.mkdir()
    (d / "autopass.toml").write_text("")
    (d / "x.c").write_text(
        '#include <stdio.h>\n#include "x.h"\n'
        "static int sq(int v) { return v * v; }\n"
        "int sum(const int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += sq(a[i]) + K; return s; }\n"
        'void hello(void) { puts("hello"); }\n')
    (d / "x.h").write_text("#define K 3\nint sum(const int *a, int n);\n")
    (d / "warn.c").write_text("int f(int x) { int unused; return x; }\nint g(void) { }\n")
    (d / "err.c").write_text("int f(int x) { return x + ; }\nint g(void) { return undeclared; }\n")
    (d / "missing.c").write_text('#include "no_such_header.h"\nint x;\n')
    (d / "q.c").write_text(
        "const char *greeting = GREETING;\nconst char *other = OTHER;\nint v = VALUE;\n")
    return d


def run(cmd, cwd, env, stdin: bytes | None = None, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env, input=stdin if stdin is not None else b"",
                          capture_output=True, timeout=timeout)


def compile_records(project: Path) -> list[dict]:
    log = project / ".autopass" / "buildlog.jsonl"
    if not log.exists():
        return []
    return [r for r in map(json.loads, log.read_text().splitlines()) if r.get("kind") == "compile"]


def compare(work: Path, env: dict, args: list[str], outputs=(), *, wrapper=AP_CC, real=None,
            stdin: bytes | None = None, wrapper_prefix=()) -> subprocess.CompletedProcess:
    """Run ``real ARGS`` then ``wrapper [prefix] ARGS`` in ``work``; exit code, stdout, stderr and
    the bytes of each file in ``outputs`` must be identical.  Returns the wrapper's result."""
    real = real or CLANG
    ref = run([real] + args, work, env, stdin)
    ref_files = {}
    for o in outputs:
        p = work / o
        ref_files[o] = p.read_bytes() if p.exists() else None
        if p.exists():
            p.unlink()
    got = run([wrapper, *wrapper_prefix] + args, work, env, stdin)
    assert got.returncode == ref.returncode, (got.stderr, ref.stderr)
    assert got.stderr == ref.stderr
    assert got.stdout == ref.stdout
    for o in outputs:
        p = work / o
        assert (p.read_bytes() if p.exists() else None) == ref_files[o], f"{o} differs"
    return got


# ---- objects, dependency files, diagnostics ----------------------------------------------------
@pytest.mark.parametrize("flags", [
    ["-O2"], ["-O0", "-g"], ["-O3", "-march=x86-64-v3", "-fno-strict-aliasing"], ["-Os", "-fPIC", "-DK2=1"],
    ["-O2", "-ffunction-sections", "-g", "-gdwarf-4"],
], ids=lambda f: " ".join(f))
def test_object_byte_identical(work, env, flags):
    args = flags + ["-c", "x.c", "-o", "x.o"]
    compare(work, env, args, ["x.o"])
    recs = compile_records(work)
    assert recs and recs[-1]["lookup"] == "miss" and recs[-1]["source"] == str(work / "x.c")


def test_default_output_name(work, env):
    compare(work, env, ["-O2", "-c", "x.c"], ["x.o"])


def test_depfiles_identical(work, env):
    (work / "deps").mkdir()
    compare(work, env, ["-O2", "-MD", "-MF", "deps/x.d", "-MT", "custom-target", "-c", "x.c", "-o", "x.o"],
            ["x.o", "deps/x.d"])
    compare(work, env, ["-O2", "-MMD", "-MP", "-c", "x.c", "-o", "y.o"], ["y.o", "y.d"])
    compare(work, env, ["-O2", "-MD", "-MQ", "$(OBJ)", "-MFdeps/q.d", "-c", "x.c", "-o", "z.o"],
            ["z.o", "deps/q.d"])
    assert len(compile_records(work)) == 3


def test_warning_diagnostics_identical(work, env):
    got = compare(work, env, ["-O2", "-Wall", "-c", "warn.c", "-o", "warn.o"], ["warn.o"])
    assert b"warning:" in got.stderr and got.returncode == 0
    got = compare(work, env, ["-O2", "-Wall", "-Werror", "-c", "warn.c", "-o", "warn.o"], ["warn.o"])
    assert b"error:" in got.stderr and got.returncode != 0


def test_error_diagnostics_identical(work, env):
    got = compare(work, env, ["-O2", "-c", "err.c", "-o", "err.o"], ["err.o"])
    assert got.returncode == 1 and b"error:" in got.stderr
    got = compare(work, env, ["-O2", "-c", "missing.c", "-o", "missing.o"], ["missing.o"])
    assert got.returncode == 1 and b"no_such_header.h" in got.stderr
    got = compare(work, env, ["-O2", "-c", "does_not_exist.c", "-o", "dne.o"], ["dne.o"])
    assert got.returncode != 0


def test_multi_source_compile_is_split_into_recorded_tus(work, env):
    """`cc -c a.c b.c` (lz4's lib/Makefile): clang's objects, depfiles, diagnostics, order and exit
    code, each source compiled on its own through autopass-cc, so that both are TUs in the build log
    (a session sees them); a failing source does not stop the others."""
    (work / "y.c").write_text('#include "x.h"\nint twice(int v) { return 2 * v + K; }\n')
    got = compare(work, env, ["-O2", "-MD", "-c", "x.c", "y.c"], ["x.o", "y.o", "x.d", "y.d"])
    assert got.returncode == 0
    assert sorted(os.path.basename(r["output"]) for r in compile_records(work)) == ["x.o", "y.o"]
    got = compare(work, env, ["-O2", "-Wall", "-c", "warn.c", "err.c", "y.c"], ["warn.o", "err.o", "y.o"])
    assert got.returncode == 1 and got.stderr.index(b"warn.c") < got.stderr.index(b"err.c")
    assert (work / "y.o").exists()
    # what cannot be split runs as given: -o with several outputs is clang's own error
    compare(work, env, ["-O2", "-c", "x.c", "y.c", "-o", "both.o"], ["both.o"])
    stats = json.loads(run([AP_CC, "stats", "--json"], work, env).stdout)
    assert stats["multi_source_splits"] == 2 and stats["passthrough_by_reason"].get("multiple source files") == 1


def test_response_file(work, env):
    (work / "args.rsp").write_text('-O2 -DGREETING="\\"hi there\\"" -DOTHER="\\"x\\"" -DVALUE=7\n-c q.c -o q.o\n')
    compare(work, env, ["@args.rsp"], ["q.o"])
    (work / "inc.rsp").write_text("-O2 -DGREETING=0 -DOTHER=0 -DVALUE=1\n")
    compare(work, env, ["@inc.rsp", "-c", "q.c", "-o", "q2.o"], ["q2.o"])


def test_a_passed_through_compile_outdates_the_record_of_its_object(work, env):
    """An object rewritten by a compile autopass-cc passed through (here with a response file) is
    no longer described by its older compile record: the build log's latest view drops it, so a
    session does not rebuild it from the old flags (seen on lz4)."""
    from autopass_cc import buildlog
    run([AP_CC, "-O3", "-c", "x.c", "-o", "x.o"], work, env).check_returncode()
    run([AP_CC, "-O3", "-c", "x.c"], work, env).check_returncode()          # x.o again, default name
    assert str(work / "x.o") in buildlog.latest(buildlog.read(str(work)))[0]
    (work / "o2.rsp").write_text("-O2 -c x.c -o x.o\n")
    run([AP_CC, "@o2.rsp"], work, env).check_returncode()
    assert str(work / "x.o") not in buildlog.latest(buildlog.read(str(work)))[0]
    run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, env).check_returncode()   # recorded again
    assert buildlog.latest(buildlog.read(str(work)))[0][str(work / "x.o")]["args"][0] == "-O2"
    run([CLANG, "-O1", "-S", "x.c", "-o", "x.s"], work, env).check_returncode()
    run([AP_CC, "-c", "x.s"], work, env).check_returncode()         # assembler source: passed through
    assert str(work / "x.o") not in buildlog.latest(buildlog.read(str(work)))[0]


def test_quoted_defines(work, env):
    args = ["-O2", '-DGREETING="hello world"', "-DOTHER=\"it's\"", "-DVALUE=(1 + 2)", "-c", "q.c", "-o", "q.o"]
    compare(work, env, args, ["q.o"])
    assert b"hello world" in (work / "q.o").read_bytes()
    assert compile_records(work)[-1]["args"] == args


def test_unicode_and_space_paths(work, env):
    d = work / "dir with space" / "ünïcödé"
    d.mkdir(parents=True)
    (d / "fïlé ä.c").write_text('#include "hé der.h"\nint f(void) { return HV; }\n')
    (d / "hé der.h").write_text("#define HV 42\n")
    (work / "out dir").mkdir()
    args = ["-O2", "-g", "-I", "dir with space/ünïcödé", "-MD", "-MF", "out dir/dé ps.d",
            "-c", "dir with space/ünïcödé/fïlé ä.c", "-o", "out dir/ö bj.o"]
    compare(work, env, args, ["out dir/ö bj.o", "out dir/dé ps.d"])
    rec = compile_records(work)[-1]
    assert rec["output"] == str(work / "out dir" / "ö bj.o")


def test_output_dev_null(work, env):
    compare(work, env, ["-O2", "-c", "x.c", "-o", os.devnull])
    compare(work, env, ["-O2", "-c", "err.c", "-o", os.devnull])


def test_stdin_input(work, env):
    src = (work / "x.c").read_bytes()
    compare(work, env, ["-O2", "-x", "c", "-c", "-", "-o", "stdin.o"], ["stdin.o"], stdin=src)
    got = compare(work, env, ["-E", "-x", "c", "-"], stdin=b"#define A 1\nint v = A;\n")
    assert b"int v = 1;" in got.stdout


def test_probes_identical(work, env):
    for args in (["--version"], ["-dumpmachine"], ["-print-resource-dir"], ["-E", "-dM", "-x", "c", "/dev/null"],
                 ["-###", "-O2", "-c", "x.c"]):
        got = compare(work, env, args)
        assert got.stdout or got.stderr
    assert compile_records(work) == []


def test_output_to_stdout_and_assembly(work, env):
    compare(work, env, ["-O2", "-S", "x.c", "-o", "-"])
    compare(work, env, ["-O2", "-S", "x.c", "-o", "x.s"], ["x.s"])
    compare(work, env, ["-O2", "-c", "x.c", "-o", "-"])


def test_link_is_passed_through_and_recorded(work, env):
    (work / "main.c").write_text("#include \"x.h\"\nvoid hello(void);\nint main(void){int a[2]={1,2};"
                                 "hello(); return sum(a,2) == 1+4+6 ? 0 : 1;}\n")
    run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, env).check_returncode()
    run([AP_CC, "-O2", "-c", "main.c", "-o", "main.o"], work, env).check_returncode()
    compare(work, env, ["main.o", "x.o", "-o", "prog"], ["prog"])
    assert run([work / "prog"], work, env).returncode == 0
    log = [json.loads(x) for x in (work / ".autopass" / "buildlog.jsonl").read_text().splitlines()]
    links = [r for r in log if r["kind"] == "link"]
    assert links and links[-1]["output"] == str(work / "prog")
    assert links[-1]["inputs"] == [str(work / "main.o"), str(work / "x.o")]


def test_no_project_no_build_log(tmp_path, env):
    d = tmp_path / "plain"
    d.mkdir()
    (d / "a.c").write_text("int a(void) { return 1; }\n")
    compare(d, env, ["-O2", "-c", "a.c", "-o", "a.o"], ["a.o"])
    assert not (d / ".autopass").exists()
    # from a subdirectory of a project: the record goes to the project root
    (d / "autopass.toml").write_text("")
    (d / "build").mkdir()
    compare(d / "build", env, ["-O2", "-c", "../a.c", "-o", "a.o"], ["a.o"])
    assert not (d / "build" / ".autopass").exists()
    assert compile_records(d)[-1]["output"] == str(d / "build" / "a.o")


def test_cxx_driver(work, env):
    (work / "k.cpp").write_text("#include <vector>\nint f(){ std::vector<int> v{1,2,3}; int s=0; "
                                "for (int x : v) s += x; return s; }\n")
    compare(work, env, ["-O2", "-std=c++17", "-c", "k.cpp", "-o", "k.o"], ["k.o"], wrapper=AP_CXX, real=CLANGXX)
    # clang++ compiles a .c file as C++; so must autopass-c++
    got = compare(work, env, ["-O2", "-c", "x.c", "-o", "xx.o"], ["xx.o"], wrapper=AP_CXX, real=CLANGXX)
    assert b"treating 'c' input as 'c++'" in got.stderr
    assert compile_records(work)[-1]["lang"] == "c++"


# ---- launcher form -----------------------------------------------------------------------------
def test_launcher_form(work, env):
    compare(work, env, ["-O2", "-c", "x.c", "-o", "x.o"], ["x.o"], wrapper_prefix=["clang-19"])
    compare(work, env, ["-O2", "-MD", "-c", "x.c", "-o", "x.o"], ["x.o", "x.d"], wrapper_prefix=[CLANG])
    rec = compile_records(work)[-1]
    assert rec["compiler"] == CLANG
    compare(work, env, ["--version"], wrapper_prefix=[CLANG])
    # the C++ compiler behind the C wrapper (one launcher for both languages): C++ mode
    got = compare(work, env, ["-O2", "-c", "x.c", "-o", "xx.o"], ["xx.o"], real=CLANGXX, wrapper_prefix=["clang++-19"])
    assert b"treating 'c' input as 'c++'" in got.stderr
    assert compile_records(work)[-1]["lang"] == "c++"
    # a launched shim (autopass itself) is not taken as the real compiler
    compare(work, env, ["-O2", "-c", "x.c", "-o", "x.o"], ["x.o"], wrapper_prefix=[AP_CC])


def test_launcher_with_non_clang_compiler_passes_through(work, env):
    gcc = shutil.which("cc")
    if gcc is None or b"clang" in run([gcc, "--version"], work, env).stdout:
        pytest.skip("needs a cc that is not clang")
    compare(work, env, ["-O2", "-c", "x.c", "-o", "x.o"], ["x.o"], real=gcc, wrapper_prefix=[gcc])
    compare(work, env, ["-O2", "-Wall", "-c", "warn.c", "-o", "w.o"], ["w.o"], real=gcc, wrapper_prefix=[gcc])
    assert compile_records(work) == []


# ---- masquerade and recursion ------------------------------------------------------------------
@pytest.fixture
def shim_dir(tmp_path):
    """The repo's shims/bin when install.sh made it, else the same links made here."""
    repo_bin = REPO / "shims" / "bin"
    if (repo_bin / "cc").exists() and os.path.realpath(repo_bin / "cc") == os.path.realpath(AP_CC):
        return repo_bin
    d = tmp_path / "shims-bin"
    d.mkdir()
    for name in ("cc", "clang"):
        os.symlink(AP_CC, d / name)
    for name in ("c++", "clang++"):
        os.symlink(AP_CXX, d / name)
    return d


def test_masquerade_make_build(work, env, shim_dir):
    (work / "main.c").write_text("#include \"x.h\"\nvoid hello(void);\nint main(void){int a[2]={1,2};"
                                 "hello(); return sum(a,2) == 1+4+6 ? 0 : 1;}\n")
    (work / "Makefile").write_text("CFLAGS = -O2\nprog: main.o x.o\n\t$(CC) $(CFLAGS) main.o x.o -o prog\n")
    env = {**env, "PATH": f"{shim_dir}{os.pathsep}{env['PATH']}"}
    assert shutil.which("cc", path=env["PATH"]) == str(shim_dir / "cc")
    t0 = time.monotonic()
    r = run(["make", "CC=cc"], work, env)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 60
    assert b"autopass-cc" not in r.stderr
    assert run([work / "prog"], work, env).stdout == b"hello\n"
    # compiled by clang-19 (not gcc, not ourselves), byte-identical to a plain clang-19 compile
    for name in ("main", "x"):
        obj = (work / f"{name}.o").read_bytes()
        assert b"clang version 19" in obj and b"GCC:" not in obj
        run([CLANG, "-O2", "-c", "-o", f"ref_{name}.o", f"{name}.c"], work, env).check_returncode()
        assert obj == (work / f"ref_{name}.o").read_bytes()
    recs = compile_records(work)
    assert {Path(r["source"]).name for r in recs} == {"main.c", "x.c"}
    assert all(os.path.realpath(r["compiler"]) == os.path.realpath(CLANG) for r in recs)
    # --version through the shim is clang's
    assert run(["cc", "--version"], work, env).stdout == run([CLANG, "--version"], work, env).stdout


def test_masquerade_cxx_shim(work, env, shim_dir):
    (work / "k.cpp").write_text("int f(){ return 42; }\n")
    env = {**env, "PATH": f"{shim_dir}{os.pathsep}{env['PATH']}"}
    compare(work, env, ["-O2", "-c", "k.cpp", "-o", "k.o"], ["k.o"], wrapper="c++", real=CLANGXX)
    compare(work, env, ["-O2", "-c", "k.cpp", "-o", "k.o"], ["k.o"], wrapper="clang++", real=CLANGXX)


@pytest.mark.parametrize("target", ["script", "shim", "bare-name"])
def test_recursion_guard_autopass_cc_points_at_itself(work, env, shim_dir, target):
    value = {"script": AP_CC, "shim": str(shim_dir / "clang"), "bare-name": "autopass-cc"}[target]
    env = {**env, "AUTOPASS_CC": value, "PATH": f"{SCRIPTS}{os.pathsep}{env['PATH']}"}
    t0 = time.monotonic()
    for args in (["-O2", "-c", "x.c", "-o", "x.o"], ["--version"], ["x.o", "-o", "prog"]):
        r = run([AP_CC] + args, work, env, timeout=30)
        assert r.returncode != 0
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("autopass-cc: ") and "AUTOPASS_CC" in lines[0], lines
        assert r.stdout == b""
    assert time.monotonic() - t0 < 15
    assert not (work / "x.o").exists()


def test_recursion_guard_through_a_script(work, env, tmp_path):
    """A "real compiler" that is a shell script calling autopass-cc again: stopped by the depth
    counter with one line, not an endless exec loop."""
    script = tmp_path / "mycc"
    script.write_text(f'#!/bin/sh\nexec "{AP_CC}" "$@"\n')
    script.chmod(0o755)
    env = {**env, "AUTOPASS_CC": str(script)}
    t0 = time.monotonic()
    r = run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, env, timeout=60)
    assert time.monotonic() - t0 < 30
    assert r.returncode != 0
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autopass-cc: ") and "itself" in lines[0], lines


# ---- CMake --------------------------------------------------------------------------------------
def _cmake_project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "autopass.toml").write_text("")
    (root / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(tiny C CXX)\n"
        "add_executable(tiny src/main.c src/util.c src/extra.cpp)\n")
    (root / "src" / "main.c").write_text(
        '#include <stdio.h>\n#include "util.h"\nint main(void){ printf("%d\\n", square(7) + extra(1)); return 0; }\n')
    (root / "src" / "util.h").write_text("int square(int);\nint extra(int);\n")
    (root / "src" / "util.c").write_text('#include "util.h"\nint square(int x){ return x * x; }\n')
    (root / "src" / "extra.cpp").write_text('#include <numeric>\n#include <vector>\nextern "C" int extra(int x)'
                                            '{ std::vector<int> v{x, 2, 3}; return std::accumulate(v.begin(), v.end(), 0); }\n')
    return root


def _cmake_build(root: Path, build: str, env: dict, *defs: str) -> subprocess.CompletedProcess:
    r = run(["cmake", "-S", root, "-B", root / build, "-DCMAKE_BUILD_TYPE=Release", *defs], root, env, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    r = run(["cmake", "--build", root / build, "--", "VERBOSE=1"], root / build, env, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert run([root / build / "tiny"], root, env).stdout == b"55\n"
    return r


def _cmake_compiler(build: Path, lang: str) -> str:
    """CMAKE_<LANG>_COMPILER as CMake recorded it after configuring ``build``."""
    (f,) = build.glob(f"CMakeFiles/*/CMake{lang}Compiler.cmake")
    return re.search(rf'set\(CMAKE_{lang}_COMPILER "([^"]*)"\)', f.read_text()).group(1)


def _objects(root: Path, build: str) -> dict:
    d = root / build / "CMakeFiles" / "tiny.dir" / "src"
    return {p.name: p.read_bytes() for p in d.glob("*.o")}


@pytest.fixture(scope="module")
def cmake_reference(tmp_path_factory):
    """Objects of the tiny project built with plain clang-19 (no autopass anywhere)."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    root = _cmake_project(tmp_path_factory.mktemp("cmake-ref") / "tiny")
    (root / "autopass.toml").unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPASS_")}
    _cmake_build(root, "build", env, f"-DCMAKE_C_COMPILER={CLANG}", f"-DCMAKE_CXX_COMPILER={CLANGXX}")
    return _objects(root, "build"), root


def _same_sources_objects(ref, root, build):
    """Objects are compared against the reference build of an identical tree at another path: the
    absolute source path is in the objects only with -g, which Release does not use."""
    ref_objs, _ = ref
    got = _objects(root, build)
    assert set(got) == {"main.c.o", "util.c.o", "extra.cpp.o"}
    assert got.keys() == ref_objs.keys()
    for name in got:
        assert got[name] == ref_objs[name], name


@pytest.mark.slow
def test_cmake_toolchain_file(tmp_path, env, cmake_reference):
    root = _cmake_project(tmp_path / "tiny")
    env = {**env, "AUTOPASS_CC_EXECUTABLE": AP_CC, "AUTOPASS_CXX_EXECUTABLE": AP_CXX}
    r = _cmake_build(root, "build", env, f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILE}")
    assert f"{AP_CC} ".encode() in r.stdout and f"{AP_CXX} ".encode() in r.stdout
    assert _cmake_compiler(root / "build", "C") == AP_CC
    assert _cmake_compiler(root / "build", "CXX") == AP_CXX
    _same_sources_objects(cmake_reference, root, "build")
    # the same archiver, linker and other binutils as plain clang-19 gets (LLVM 19's, not an
    # unversioned older llvm-ar that CMake would otherwise find for a compiler named autopass-cc)
    assert _binutils(root / "build") == _binutils(cmake_reference[1] / "build")
    assert _binutils(root / "build")["CMAKE_C_COMPILER_AR"].endswith("-19")
    # the project was found by walking up from build/: compile and link records at the root
    log = [json.loads(x) for x in (root / ".autopass" / "buildlog.jsonl").read_text().splitlines()]
    compiles = [r for r in log if r["kind"] == "compile" and "CMakeFiles/tiny.dir" in r["output"]]
    assert {Path(r["source"]).name for r in compiles} == {"main.c", "util.c", "extra.cpp"}
    assert all(r["lookup"] == "miss" and r["cwd"] == str(root / "build") for r in compiles)
    assert {r["lang"] for r in compiles} == {"c", "c++"}
    links = [r for r in log if r["kind"] == "link"]
    assert links and links[-1]["output"] == str(root / "build" / "tiny")
    assert not (root / "build" / ".autopass").exists()


def _binutils(build: Path) -> dict:
    """The binutils CMake chose when configuring ``build`` (CMakeCache.txt)."""
    names = ("AR", "RANLIB", "NM", "OBJCOPY", "OBJDUMP", "READELF", "STRIP", "LINKER", "C_COMPILER_AR",
             "C_COMPILER_RANLIB", "CXX_COMPILER_AR", "CXX_COMPILER_RANLIB")
    text = (build / "CMakeCache.txt").read_text()
    return {f"CMAKE_{n}": m.group(1) for n in names if (m := re.search(rf"^CMAKE_{n}:FILEPATH=(.*)$", text, re.M))}


@pytest.mark.slow
def test_cmake_toolchain_file_with_interprocedural_optimization(tmp_path, env):
    """CMAKE_INTERPROCEDURAL_OPTIMIZATION (LTO objects, archived with the compiler's llvm-ar) builds
    and runs through the toolchain file as it does with plain clang-19 (found by a build of a real
    project: the archiver was NOTFOUND)."""
    root = tmp_path / "ipo"
    (root / "src").mkdir(parents=True)
    (root / "autopass.toml").write_text("")
    (root / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(ipo C)\n"
        "add_library(sq STATIC src/sq.c)\nadd_executable(tiny src/main.c)\ntarget_link_libraries(tiny sq)\n")
    (root / "src" / "sq.c").write_text("int square(int x) { return x * x; }\n")
    (root / "src" / "main.c").write_text('#include <stdio.h>\nint square(int);\n'
                                         'int main(void) { printf("%d\\n", square(7) + 6); return 0; }\n')
    env = {**env, "AUTOPASS_CC_EXECUTABLE": AP_CC, "AUTOPASS_CXX_EXECUTABLE": AP_CXX}
    _cmake_build(root, "build", env, f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILE}",
                 "-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=ON")
    with open(root / "build" / "libsq.a", "rb") as f:
        assert b"BC\xc0\xde" in f.read()          # the members are LLVM bitcode: LTO really happened


@pytest.mark.slow
@pytest.mark.parametrize("where", ["shims-bin", "path"])
def test_cmake_toolchain_file_finds_wrappers(tmp_path, env, where):
    """Without AUTOPASS_*_EXECUTABLE the toolchain file takes <its dir>/bin/autopass-cc (install.sh's
    links), else autopass-cc from PATH."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    if where == "shims-bin":
        toolchain = TOOLCHAIN_FILE
        if not (REPO / "shims" / "bin" / "autopass-cc").exists():
            pytest.skip("install.sh has not written shims/bin/autopass-cc")
        expected = str(REPO / "shims" / "bin" / "autopass-cc")
    else:
        toolchain = tmp_path / "elsewhere" / "autopass.cmake"
        toolchain.parent.mkdir()
        shutil.copy(TOOLCHAIN_FILE, toolchain)
        expected = AP_CC
    root = _cmake_project(tmp_path / "tiny")
    env = {**env, "PATH": f"{SCRIPTS}{os.pathsep}{env['PATH']}"}
    r = run(["cmake", "-S", root, "-B", root / "build", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}"], root, env,
            timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert _cmake_compiler(root / "build", "C") == expected
    assert _cmake_compiler(root / "build", "CXX") == expected.replace("autopass-cc", "autopass-c++")
    assert b"The C compiler identification is Clang 19" in r.stdout
    assert b"The CXX compiler identification is Clang 19" in r.stdout


@pytest.mark.slow
def test_cmake_toolchain_file_not_found_is_one_clear_error(tmp_path, env):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    toolchain = tmp_path / "elsewhere" / "autopass.cmake"
    toolchain.parent.mkdir()
    shutil.copy(TOOLCHAIN_FILE, toolchain)
    root = _cmake_project(tmp_path / "tiny")
    env = {**env, "PATH": "/usr/bin:/bin"}
    r = run(["cmake", "-S", root, "-B", root / "build", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}"], root, env,
            timeout=300)
    assert r.returncode != 0
    assert b"autopass-cc not found" in r.stderr


@pytest.mark.slow
def test_cmake_launcher(tmp_path, env, cmake_reference):
    root = _cmake_project(tmp_path / "tiny")
    r = _cmake_build(root, "build", env, f"-DCMAKE_C_COMPILER={CLANG}", f"-DCMAKE_CXX_COMPILER={CLANGXX}",
                     f"-DCMAKE_C_COMPILER_LAUNCHER={AP_CC}", f"-DCMAKE_CXX_COMPILER_LAUNCHER={AP_CXX}",
                     f"-DCMAKE_C_LINKER_LAUNCHER={AP_CC}", f"-DCMAKE_CXX_LINKER_LAUNCHER={AP_CXX}")
    assert f"{AP_CC} {CLANG} ".encode() in r.stdout
    _same_sources_objects(cmake_reference, root, "build")
    log = [json.loads(x) for x in (root / ".autopass" / "buildlog.jsonl").read_text().splitlines()]
    compiles = [r for r in log if r["kind"] == "compile"]
    assert {Path(r["source"]).name for r in compiles} == {"main.c", "util.c", "extra.cpp"}
    assert {r["compiler"] for r in compiles} == {CLANG, CLANGXX}
    assert [r["output"] for r in log if r["kind"] == "link"] == [str(root / "build" / "tiny")]


@pytest.mark.slow
def test_cmake_launcher_with_gcc_passes_through(tmp_path, env):
    """CMake's default cc (gcc here) behind the launcher: every call passes through, nothing recorded."""
    gcc = shutil.which("cc")
    if gcc is None or b"clang" in subprocess.run([gcc, "--version"], capture_output=True).stdout:
        pytest.skip("needs a cc that is not clang")
    root = _cmake_project(tmp_path / "tiny")
    env = {k: v for k, v in env.items() if k not in ("CC", "CXX")}
    r = _cmake_build(root, "build", env, f"-DCMAKE_C_COMPILER_LAUNCHER={AP_CC}",
                     f"-DCMAKE_CXX_COMPILER_LAUNCHER={AP_CXX}")
    assert re.search(rf"{re.escape(AP_CC)} /\S*/cc ".encode(), r.stdout)
    assert b"autopass-cc:" not in r.stderr
    assert compile_records(root) == []
