"""Tests for autopass_cc.tuning.profile: callgrind parsing, a real callgrind run, symbols -> TUs."""

import os
import shutil
import subprocess

import pytest

from autopass_cc.tuning import profile as P

HAVE_CLANG = bool(shutil.which("clang-19"))
HAVE_VALGRIND = bool(shutil.which("valgrind"))

# ---------------------------------------------------------------------------------------------
# the callgrind format parser
# ---------------------------------------------------------------------------------------------

CG = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  ./prog 10
part: 1

positions: line
events: Ir Dr
summary: 1110

ob=(1) /tmp/prog
fl=(1) prog.c
fn=(1) main
10 5 1
+2 3
cfl=(1)
cfn=(2) hot
calls=1 20
12 1000 7
* 2
fi=(2) inc.h
-1 1
fe=(1)
fn=(2)
20 600
+1 400
cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
cfn=(3) memcpy
calls=4 0
21 50
ob=(2)
fl=(3) ???
fn=(3)
0 50
jump=3 +5
fn=(4) 'weird name' with spaces
0 41
totals: 1141
"""


def test_parse_callgrind_exclusive_costs(tmp_path):
    p = tmp_path / "cg.4242"
    p.write_text(CG)
    d = P.parse_callgrind(str(p))
    assert d.pid == 4242 and d.cmd == "./prog 10" and d.events == ["Ir", "Dr"] and d.summary == 1110
    # main: 5 + 3 + 2 (the "*" line) + 1 (inlined from inc.h): the 1000 of the call is inclusive
    assert d.exclusive[("/tmp/prog", "main")] == 11
    # hot: 600 + 400, its call to memcpy (50) not added
    assert d.exclusive[("/tmp/prog", "hot")] == 1000
    assert d.exclusive[("/usr/lib/x86_64-linux-gnu/libc.so.6", "memcpy")] == 50
    assert d.exclusive[("/usr/lib/x86_64-linux-gnu/libc.so.6", "'weird name' with spaces")] == 41
    assert d.inclusive_calls[("/tmp/prog", "main", "hot")] == 1000
    assert d.inclusive_calls[("/tmp/prog", "hot", "memcpy")] == 50
    assert d.total == 1102


def test_parse_callgrind_instr_positions(tmp_path):
    p = tmp_path / "cg.1"
    p.write_text("positions: instr line\nevents: Ir\nob=(1) /x\nfn=(1) f\n0x401000 3 7\n+4 * 2\n"
                 "cfn=(2) g\ncalls=1 0x401100 9\n+2 * 100\nfn=(2)\n0x401100 9 100\n")
    d = P.parse_callgrind(str(p))
    assert d.exclusive == {("/x", "f"): 9, ("/x", "g"): 100}


# ---------------------------------------------------------------------------------------------
# a real run
# ---------------------------------------------------------------------------------------------

PROG = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) long hot(long n) { long s = 0; for (long i = 0; i < n; i++) s += (i * i) % 7; return s; }
__attribute__((noinline)) long cold(long n) { long s = 0; for (long i = 0; i < n; i++) s += (i * i) % 7; return s + 1; }
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000;
  printf("%ld %ld\n", hot(n), cold(n / 20));
  return 0;
}
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    if not HAVE_CLANG:
        pytest.skip("needs clang-19")
    d = tmp_path_factory.mktemp("prof")
    (d / "p.c").write_text(PROG)
    subprocess.run(["clang-19", "-O1", "-o", "p", "p.c"], cwd=d, check=True)
    return str(d)


@pytest.mark.skipif(not HAVE_VALGRIND, reason="needs valgrind")
def test_hot_functions_callgrind(prog, tmp_path):
    shares = P.hot_functions_callgrind("./p 200000 && ./p 100000 > /dev/null", prog, 60, str(tmp_path / "cg"))
    assert abs(sum(shares.values()) - 1.0) < 1e-9
    assert list(shares)[0] == "hot"                      # hottest first
    assert shares["hot"] > 0.6
    # cold runs the same loop for n/20 iterations: about 20x fewer instructions (21.7 measured)
    assert 17 < shares["hot"] / shares["cold"] < 26
    assert shares["main"] < 0.01
    # three processes traced: the shell and both runs of the program
    files = [f for f in os.listdir(tmp_path / "cg") if f.startswith("cg.")]
    assert len(files) == 3


@pytest.mark.skipif(not HAVE_VALGRIND, reason="needs valgrind")
def test_callgrind_runs_a_copy_without_debug_information(prog, tmp_path):
    """The session profiles copies of its images stripped of debug information (valgrind 3.19 gives
    up on some of clang-19's DWARF 5): the copy has no .debug_* section, keeps the symbol table,
    so callgrind names the same functions with the same counts; a file that cannot be stripped is
    used as it is."""
    d = tmp_path / "g"
    d.mkdir()
    subprocess.run(["clang-19", "-O1", "-g", "-o", str(d / "p"), os.path.join(prog, "p.c")], check=True)
    files = P.without_debug_info({"/user/p": str(d / "p"), "/user/x": str(d / "missing")}, str(tmp_path / "strip"))
    copy = files["/user/p"]
    assert copy != str(d / "p") and files["/user/x"] == str(d / "missing")
    sections = lambda f: subprocess.run(["llvm-readelf-19", "-S", f], capture_output=True, text=True).stdout
    assert ".debug_info" in sections(str(d / "p")) and ".debug_info" not in sections(copy)
    assert ".symtab" in sections(copy)
    shares = {}
    for name, path in (("full", str(d / "p")), ("stripped", copy)):
        shares[name] = P.hot_functions_callgrind(f"{path} 100000", str(d), 60, str(tmp_path / f"cg-{name}"))
    assert shares["stripped"]["hot"] > 0.6
    assert shares["stripped"]["hot"] == pytest.approx(shares["full"]["hot"], rel=0.01)


REC = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) long walk(long depth, long n) {
  long s = 0;
  for (long i = 0; i < n; i++) s += (i * depth) % 7;
  return depth ? s + walk(depth - 1, n) : s;
}
int main(int argc, char **argv) { printf("%ld\n", walk(6, argc > 1 ? atol(argv[1]) : 1000)); return 0; }
"""


@pytest.mark.skipif(not HAVE_VALGRIND, reason="needs valgrind")
def test_recursion_levels_count_as_their_function(tmp_path):
    """Callgrind reports the recursion levels of walk as walk'2 ... walk'7 (its --separate-recs
    default); they are walk's cost, which symbols_of_object maps to its TU under the name walk."""
    if not HAVE_CLANG:
        pytest.skip("needs clang-19")
    (tmp_path / "r.c").write_text(REC)
    # -O0: at -O1 tail recursion elimination turns walk into a loop
    subprocess.run(["clang-19", "-O0", "-o", "r", "r.c"], cwd=tmp_path, check=True)
    shares = P.hot_functions_callgrind("./r 50000", str(tmp_path), 60, str(tmp_path / "cg"))
    assert not any("'" in f for f in shares), shares
    assert shares["walk"] > 0.9


@pytest.mark.skipif(not HAVE_VALGRIND, reason="needs valgrind")
def test_program_behind_a_skipped_system_tool(prog, tmp_path):
    # /usr/bin/env is skipped (--trace-children-skip): the program would be invisible, so the
    # command runs again with every child traced.
    shares = P.hot_functions_callgrind("env ./p 100000", prog, 60, str(tmp_path / "cg"))
    assert shares.get("hot", 0) > 0.5


@pytest.mark.skipif(not HAVE_VALGRIND, reason="needs valgrind")
def test_failing_command(prog, tmp_path):
    with pytest.raises(P.ProfileError, match="failed"):
        P.hot_functions_callgrind("./p 10 && exit 3", prog, 60, str(tmp_path / "cg"))


# ---------------------------------------------------------------------------------------------
# functions -> TUs
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    if not HAVE_CLANG:
        pytest.skip("needs clang-19")
    d = tmp_path_factory.mktemp("objs")
    (d / "a.c").write_text("static int helper(int x) { return x * 3; }\n"
                           "int alpha(int x) { return helper(x) + ext(x); }\nint ext(int);\n"
                           "int table[4];\n__attribute__((weak)) int wk(void) { return 1; }\n"
                           "int (*keep)(int) = helper;\n")
    (d / "b.c").write_text("static int helper(int x) { return x * 5; }\n"
                           "int beta(int x) { return helper(x); }\nint (*keep2)(int) = helper;\n")
    for s in ("a", "b"):
        subprocess.run(["clang-19", "-O1", "-Wno-implicit-function-declaration", "-c", f"{s}.c", "-o", f"{s}.o"],
                       cwd=d, check=True)
    return {"A": str(d / "a.o"), "B": str(d / "b.o")}


def test_symbols_of_object(objects):
    syms = P.symbols_of_object(objects["A"])
    assert {"alpha", "helper", "wk"} <= syms
    assert "ext" not in syms          # undefined
    assert "table" not in syms and "keep" not in syms   # data
    assert P.symbols_of_object(objects["B"]) == {"beta", "helper"}


def test_hot_tus(objects):
    shares = {"alpha": 0.3, "beta": 0.1, "helper": 0.4, "memcpy": 0.15, "main": 0.05}
    out = P.hot_tus(shares, objects)
    assert [t for t, _, _ in out] == ["A", "B"]
    a, b = out[0], out[1]
    assert a[1] == pytest.approx(0.5) and b[1] == pytest.approx(0.3)   # helper split evenly
    assert a[2] == [("alpha", 0.3), ("helper", 0.2)]
    assert b[2] == [("helper", 0.2), ("beta", 0.1)]
    assert P.hot_tus({"nothing": 1.0}, objects) == []
    assert P.hot_tus(shares, {"X": "/nonexistent.o", **objects})[0][0] == "A"


# ---------------------------------------------------------------------------------------------
# the optional instrumentation profile
# ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("llvm-profdata-19"), reason="needs llvm-profdata-19")
def test_hot_functions_profdata(prog, tmp_path):
    d = str(tmp_path)
    subprocess.run(["clang-19", "-O1", "-fprofile-instr-generate", "-o", "pi", os.path.join(prog, "p.c")],
                   cwd=d, check=True)
    env = dict(os.environ, LLVM_PROFILE_FILE=os.path.join(d, "run-%p.profraw"))
    subprocess.run(["./pi", "50000"], cwd=d, env=env, check=True, capture_output=True)
    raws = [os.path.join(d, f) for f in os.listdir(d) if f.endswith(".profraw")]
    shares = P.hot_functions_profdata(raws, os.path.join(d, "pd"))
    assert list(shares)[0] == "hot"
    assert shares["hot"] > 10 * shares["cold"]
    assert abs(sum(shares.values()) - 1) < 1e-9


@pytest.mark.skipif(not HAVE_VALGRIND, reason="needs valgrind")
def test_an_instruction_valgrind_cannot_run_is_named(tmp_path):
    """FLAC's FMA code stopped valgrind 3.19 with "vex amd64->IR: unhandled instruction bytes",
    a line the backtrace after it pushed out of the message's tail."""
    from autopass_cc.tuning.profile import ProfileError, _run_callgrind
    cmd = ("echo 'vex amd64->IR: unhandled instruction bytes: 0xC5 0x79 0xD6 0xC4' >&2; "
           + "; ".join(f"echo '==1==    by 0x{i:X}: frame{i} (in /x/prog)' >&2" for i in range(20)) + "; exit 132")
    with pytest.raises(ProfileError) as e:
        _run_callgrind(cmd, str(tmp_path), 60, str(tmp_path), "")
    assert "valgrind does not know an instruction the program uses" in str(e.value)
    assert "0xC5 0x79 0xD6 0xC4" in str(e.value)
