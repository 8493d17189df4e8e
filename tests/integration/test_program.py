"""The session's relink (tuning/program.py) on real link lines: objects in a response file and a
TU inside a static archive must both be replaced by the candidate's objects."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

from conftest import run, write_project

from autopass_cc.pipeline import Pipeline
from autopass_cc.tuning.program import BinarySwap, Program, recover

SRC = {
    "main.c": '#include <stdio.h>\nint work(int);\nint lib(int);\nint main(void){int s=0;'
              'for(int i=0;i<1000;i++) s+=work(i)+lib(i);printf("%d\\n",s);return 0;}\n',
    "work.c": "int work(int n){int s=0;for(int i=0;i<n;i++) s+=i*i%7;return s;}\n",
    "lib.c": "int lib(int n){int s=1;for(int i=0;i<n%64;i++) s=s*3+i;return s;}\n",
}


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_relink_replaces_objects_in_response_files_and_archives(wrapper, env, tmp_path):
    d = write_project(str(tmp_path / "p"), SRC)
    for name in SRC:
        run([wrapper, "-O2", "-c", name], d, env)
    run(["llvm-ar-19", "rcs", "liblib.a", "lib.o"], d, env)
    with open(os.path.join(d, "objs.rsp"), "w") as f:
        f.write("work.o\n")
    run([wrapper, "main.o", "@objs.rsp", "liblib.a", "-o", "prog"], d, env)
    expected = run("./prog", d, env).stdout

    prog = Program(d, "prog", str(tmp_path / "scratch"))
    assert sorted(os.path.basename(t.source) for t in prog.tus) == ["lib.c", "main.c", "work.c"]
    assert next(t for t in prog.tus if t.source.endswith("lib.c")).archive == os.path.join(d, "liblib.a")
    base = prog.link_config({})
    # The baseline relink reproduces the user's link exactly.
    assert _sha(base.binary) == _sha(os.path.join(d, "prog"))
    for which in ("work.c", "lib.c"):
        tu = next(t for t in prog.tus if t.source.endswith(which))
        cand = prog.link_config({tu.tu_id: Pipeline().with_opt_level("O1").with_knob("unroll-count", 2)})
        assert _sha(cand.binary) != _sha(base.binary), f"the candidate object of {which} did not reach the link"
        assert subprocess.run([cand.binary], capture_output=True, text=True).stdout == expected
    # The user's archive and objects are untouched.
    assert run(["llvm-ar-19", "t", "liblib.a"], d, env).stdout.split() == ["lib.o"]


THIN_SRC = {
    "main.c": '#include <stdio.h>\nint work(int);\nint lib(int);\nint lib2(int);\nint main(void){int s=0;'
              'for(int i=0;i<1000;i++) s+=work(i)+lib(i)+lib2(i);printf("%d\\n",s);return 0;}\n',
    "work.c": "int work(int n){int s=0;for(int i=0;i<n;i++) s+=i*i%7;return s;}\n",
    "a/lib.c": "int lib(int n){int s=1;for(int i=0;i<n%64;i++) s=s*3+i;return s;}\n",
    "b/lib.c": "int lib2(int n){int s=2;for(int i=0;i<n%32;i++) s=s*5-i;return s;}\n",
}


def test_relink_rebuilds_a_thin_archive(wrapper, env, tmp_path):
    """Meson links its uninstalled static libraries as thin archives (``ar T``), whose ``ar t``
    prints paths: seen on pixman, where the TUs in them were never examined.  Both members (the
    same file name in two directories) are found and replaced; the user's archive is untouched."""
    d = write_project(str(tmp_path / "p"), THIN_SRC)
    for name in THIN_SRC:
        run([wrapper, "-O2", "-c", name, "-o", name[:-2] + ".o"], d, env)
    run(["llvm-ar-19", "qcsT", "libx.a", "a/lib.o", "b/lib.o"], d, env)
    with open(os.path.join(d, "libx.a"), "rb") as f:
        assert f.read(8) == b"!<thin>\n"
    run([wrapper, "main.o", "work.o", "libx.a", "-o", "prog"], d, env)
    expected = run("./prog", d, env).stdout

    prog = Program(d, "prog", str(tmp_path / "scratch"))
    assert sorted(t.rel for t in prog.tus) == ["a/lib.c", "b/lib.c", "main.c", "work.c"]
    assert {t.archive for t in prog.tus if t.rel.endswith("lib.c")} == {os.path.join(d, "libx.a")}
    base = prog.link_config({})
    assert subprocess.run([base.binary], capture_output=True, text=True).stdout == expected
    for which in ("a/lib.c", "b/lib.c"):
        tu = next(t for t in prog.tus if t.rel == which)
        cand = prog.link_config({tu.tu_id: Pipeline().with_opt_level("O1").with_knob("unroll-count", 2)})
        assert _sha(cand.binary) != _sha(base.binary), f"the candidate object of {which} did not reach the link"
        assert subprocess.run([cand.binary], capture_output=True, text=True).stdout == expected
    assert run(["llvm-ar-19", "t", "libx.a"], d, env).stdout.split() == ["a/lib.o", "b/lib.o"]


SHARED_SRC = {
    "main.c": '#include <stdio.h>\nint work(int);\nint lib(int);\nint main(void){int s=0;'
              'for(int i=0;i<1000;i++) s+=work(i)+lib(i);printf("%d\\n",s);return 0;}\n',
    "work.c": "int work(int n){int s=0;for(int i=0;i<n;i++) s+=i*i%7;return s;}\n",
    "lib.c": "int lib(int n){int s=1;for(int i=0;i<n%64;i++) s=s*3+i;return s;}\n",
}


def test_relink_rebuilds_shared_libraries_and_l_archives(wrapper, env, tmp_path):
    """A TU in a shared library of the build tree (linked by path through a symlink, as CMake and
    libtool do) and one in an archive named by -L. -lNAME are both tuned: the library is relinked,
    swapped in at its real path for the run, and restored after."""
    d = write_project(str(tmp_path / "p"), SHARED_SRC)
    run([wrapper, "-O2", "-fPIC", "-c", "work.c"], d, env)
    run([wrapper, "-shared", "work.o", "-Wl,-soname,libwork.so.1", "-o", "libwork.so.1.0"], d, env)
    os.symlink("libwork.so.1.0", os.path.join(d, "libwork.so"))
    os.symlink("libwork.so.1.0", os.path.join(d, "libwork.so.1"))
    run([wrapper, "-O2", "-c", "lib.c"], d, env)
    run(["llvm-ar-19", "rcs", "liblib.a", "lib.o"], d, env)
    run([wrapper, "-O2", "-c", "main.c"], d, env)
    run([wrapper, "main.o", "-L.", "-lwork", "-llib", "-Wl,-rpath,$ORIGIN", "-o", "prog"], d, env)
    expected = run("./prog", d, env).stdout
    user_lib = os.path.join(d, "libwork.so.1.0")
    before = (_sha(user_lib), os.stat(user_lib).st_ino, os.stat(user_lib).st_mtime_ns)

    prog = Program(d, "prog", str(tmp_path / "scratch"))
    assert [i.path for i in prog.images] == [os.path.join(d, "prog"), user_lib]
    by_src = {os.path.basename(t.source): t for t in prog.tus}
    assert sorted(by_src) == ["lib.c", "main.c", "work.c"]
    assert by_src["work.c"].image == 1 and by_src["lib.c"].archive == os.path.join(d, "liblib.a")
    base = prog.link_config({})
    assert list(base.files) == [os.path.join(d, "prog"), user_lib]
    assert _sha(base.files[user_lib]) == before[0]       # the library's relink reproduces the user's
    slow = Pipeline().with_opt_level("O1").with_knob("unroll-count", 2)
    cand_work = prog.link_config({by_src["work.c"].tu_id: slow})
    assert _sha(cand_work.files[user_lib]) != before[0]
    assert cand_work.digest() != base.digest()
    cand_lib = prog.link_config({by_src["lib.c"].tu_id: slow})
    assert _sha(cand_lib.binary) != _sha(base.binary)     # the -llib archive was rebuilt

    with BinarySwap(d, [i.path for i in prog.images]) as swap:
        swap.install(cand_work)
        assert _sha(user_lib) == _sha(cand_work.files[user_lib])
        assert run("./prog", d, env).stdout == expected
    assert (_sha(user_lib), os.stat(user_lib).st_ino, os.stat(user_lib).st_mtime_ns) == before
    assert os.path.islink(os.path.join(d, "libwork.so"))


def test_recover_reads_a_journal_of_the_older_one_file_format(tmp_path):
    d = str(tmp_path)
    os.makedirs(os.path.join(d, ".autopass", "backup"))
    target, backup = os.path.join(d, "prog"), os.path.join(d, ".autopass", "backup", "prog")
    with open(target, "w") as f:
        f.write("candidate")
    with open(backup, "w") as f:
        f.write("original")
    with open(os.path.join(d, ".autopass", "swap.json"), "w") as f:
        json.dump({"target": target, "backup": backup, "existed": True, "pid": 1}, f)
    assert "restored" in recover(d)
    assert open(target).read() == "original" and not os.path.exists(backup)
    assert recover(d) is None


def test_a_target_copied_after_its_link_is_found_by_content(wrapper, env, tmp_path):
    """zstd's Makefile links obj/conf_<hash>/zstd and copies it to programs/zstd: the target is
    the copy (what the run command executes), its link record the one whose output has its bytes."""
    d = write_project(str(tmp_path / "p"), SRC)
    os.makedirs(os.path.join(d, "obj"))
    for name in SRC:
        run([wrapper, "-O2", "-c", name], d, env)
    run([wrapper, "main.o", "work.o", "lib.o", "-o", "obj/prog"], d, env)
    shutil.copy2(os.path.join(d, "obj", "prog"), os.path.join(d, "prog"))
    prog = Program(d, "prog", str(tmp_path / "scratch"))
    assert prog.target == os.path.join(d, "prog") and prog.link["output"] == os.path.join(d, "obj", "prog")
    assert len(prog.tus) == 3
    base = prog.link_config({})
    assert list(base.files) == [os.path.join(d, "prog")] and _sha(base.binary) == _sha(os.path.join(d, "prog"))


def test_a_run_command_that_never_executes_the_target_stops_the_session(wrapper, env, tmp_path):
    """Timing a program the swap never touches would turn noise into verdicts: the profile shows
    what ran, and the session stops with one line naming it."""
    d = write_project(str(tmp_path / "p"), SRC)
    for name in SRC:
        run([wrapper, "-O2", "-c", name], d, env)
    run([wrapper, "main.o", "work.o", "lib.o", "-o", "prog"], d, env)
    run(["clang-19", "-O2", "main.c", "work.c", "lib.c", "-o", "other"], d, env)
    run([wrapper, "init", "--force", "--run", "./other", "--target", "prog", "--on-miss", "off"], d, env)
    r = run([wrapper, "tune", "--budget", "1"], d, {**env, "AUTOPASS_PROFILE": "callgrind"}, check=False)
    assert r.returncode != 0 and "the run command never executes prog (callgrind saw it run other)" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(d, ".autopass", "swap.json"))


def test_objects_renamed_after_their_compile_are_matched_by_content(wrapper, env, tmp_path):
    """zlib's Makefile compiles the shared library's objects with -o objs/x.o and renames them x.lo:
    the library's link names files no compile wrote.  The TU is found by its baseline object's
    bytes, and the relink puts the candidate's object in place of x.lo."""
    d = write_project(str(tmp_path / "p"), SRC)
    os.makedirs(os.path.join(d, "objs"))
    run([wrapper, "-O2", "-fPIC", "-c", "work.c", "-o", "objs/work.o"], d, env)
    os.rename(os.path.join(d, "objs", "work.o"), os.path.join(d, "work.lo"))
    run([wrapper, "-O2", "-c", "work.c"], d, env)            # the static library's copy: same stem, other bytes
    run([wrapper, "-shared", "work.lo", "-o", "libwork.so"], d, env)
    for name in ("main.c", "lib.c"):
        run([wrapper, "-O2", "-c", name], d, env)
    run([wrapper, "main.o", "lib.o", "-L.", "-lwork", "-Wl,-rpath,$ORIGIN", "-o", "prog"], d, env)
    prog = Program(d, "prog", str(tmp_path / "scratch"))
    work = next(t for t in prog.tus if t.source.endswith("work.c"))
    assert work.image == 1 and work.output == os.path.join(d, "objs", "work.o") and "-fPIC" in work.args
    base = prog.link_config({})
    lib = os.path.join(d, "libwork.so")
    assert _sha(base.files[lib]) == _sha(lib)
    cand = prog.link_config({work.tu_id: Pipeline().with_opt_level("O1").with_knob("unroll-count", 2)})
    assert _sha(cand.files[lib]) != _sha(lib)


def test_a_library_the_run_loads_from_elsewhere_is_noted(wrapper, env, tmp_path):
    """The run loads another copy of the build tree's library (LD_LIBRARY_PATH): its TUs would
    be tuned blind, so the report says so."""
    d = write_project(str(tmp_path / "p"), SHARED_SRC)
    run([wrapper, "-O2", "-fPIC", "-c", "work.c"], d, env)
    run([wrapper, "-shared", "work.o", "-Wl,-soname,libwork.so.1", "-o", "libwork.so.1"], d, env)
    os.symlink("libwork.so.1", os.path.join(d, "libwork.so"))
    for name in ("main.c", "lib.c"):
        run([wrapper, "-O2", "-c", name], d, env)
    run([wrapper, "main.o", "lib.o", "-L.", "-lwork", "-Wl,-rpath,$ORIGIN", "-o", "prog"], d, env)
    os.makedirs(os.path.join(d, "elsewhere"))
    shutil.copy2(os.path.join(d, "libwork.so.1"), os.path.join(d, "elsewhere", "libwork.so.1"))
    run([wrapper, "init", "--force", "--run", "LD_LIBRARY_PATH=elsewhere ./prog", "--target", "prog",
         "--on-miss", "off"], d, env)
    r = run([wrapper, "tune", "--budget", "1", "--json", "--quiet"], d, {**env, "AUTOPASS_PROFILE": "callgrind"})
    notes = json.loads(r.stdout)["notes"]
    assert any("the run never ran code of libwork.so.1" in n for n in notes), notes


def test_init_refuses_a_directory_as_target(wrapper, env, tmp_path):
    """CMake puts a program in a directory of its name (build/xmlwf/xmlwf): --target build/xmlwf
    would later read as 'no link of build/xmlwf'; init says what is wrong at once."""
    d = write_project(str(tmp_path / "p"), SRC)
    os.makedirs(os.path.join(d, "build", "xmlwf"))
    r = run([wrapper, "init", "--force", "--run", "build/xmlwf/xmlwf x", "--target", "build/xmlwf"], d, env, check=False)
    assert r.returncode != 0 and "is a directory" in r.stderr and "build/xmlwf/xmlwf" in r.stderr, r.stderr


def test_a_one_step_build_is_split_so_it_can_be_cached_and_tuned(wrapper, env, tmp_path):
    """cc CFLAGS -o prog a.c b.c -lm (sqlite's shell, many small Makefiles): in a project it is
    compiled source by source through autopass-cc and linked; the program is byte-identical to
    clang's one-step build, a rebuild hits the object cache, a session can relink it, and a
    compile error reads and exits as clang's.  Outside a project the command is not touched."""
    d = write_project(str(tmp_path / "p"), SRC)
    cmd = ["-O2", "-DUNUSED=1", "-o", "prog", "main.c", "work.c", "lib.c", "-lm"]
    run([wrapper] + cmd, d, env)
    run(["clang-19"] + [a if a != "prog" else "ref" for a in cmd], d, env)
    assert _sha(os.path.join(d, "prog")) == _sha(os.path.join(d, "ref"))
    run([wrapper] + cmd, d, env)
    s = json.loads(run([wrapper, "stats", "--json"], d, env).stdout)
    assert s["one_step_links"] == 2 and s["object_hits"] == 3 and s["internal_errors"] == 0, s
    prog = Program(d, "prog", str(tmp_path / "scratch"))
    assert sorted(os.path.basename(t.source) for t in prog.tus) == ["lib.c", "main.c", "work.c"]
    assert _sha(prog.link_config({}).binary) == _sha(os.path.join(d, "prog"))
    with open(os.path.join(d, "bad.c"), "w") as f:
        f.write("int g(void) { return missing; }\n")
    ours = run([wrapper, "-O2", "-o", "p2", "main.c", "bad.c"], d, env, check=False)
    theirs = run(["clang-19", "-O2", "-o", "p2", "main.c", "bad.c"], d, env, check=False)
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr) and ours.returncode == 1
    plain = str(tmp_path / "plain")
    shutil.copytree(d, plain, ignore=shutil.ignore_patterns(".autopass", "autopass.toml"))
    run([wrapper] + cmd, plain, env)
    assert not os.path.exists(os.path.join(plain, ".autopass"))


def test_a_candidate_compile_over_the_time_limit_is_stopped(wrapper, env, tmp_path, monkeypatch):
    """A compile with a candidate pipeline may take COMPILE_LIMIT_FACTOR x the TU's compile with the
    user's flags (at least COMPILE_LIMIT_MIN_S); past that clang is killed and the trial fails with
    a BuildFailed that says so.  The limits are shrunk here so that a real clang-19 compile exceeds
    them; the baseline compile itself has no limit."""
    import time
    import pytest
    from autopass_cc.tuning import program as program_mod
    from autopass_cc.tuning.program import BuildFailed
    d = write_project(str(tmp_path / "p"), SRC)
    for name in SRC:
        run([wrapper, "-O2", "-c", name], d, env)
    run([wrapper, "main.o", "work.o", "lib.o", "-o", "prog"], d, env)
    prog = Program(d, "prog", str(tmp_path / "scratch"))
    tu = next(t for t in prog.tus if t.source.endswith("work.c"))
    assert prog.compile_limit(tu) is None                      # nothing timed yet
    prog.link_config({})                                       # the baseline: timed, no limit
    base = prog._baseline_s[tu.tu_id]
    assert 0 < base and prog.compile_limit(tu) == max(program_mod.COMPILE_LIMIT_MIN_S, 5.0 * base)
    monkeypatch.setattr(program_mod, "COMPILE_LIMIT_MIN_S", 0.0)
    monkeypatch.setattr(program_mod, "COMPILE_LIMIT_FACTOR", 0.01)
    t0 = time.monotonic()
    with pytest.raises(BuildFailed, match=r"compile of work\.c stopped after .* over 0\.01x"):
        prog.link_config({tu.tu_id: Pipeline().with_knob("unroll-count", 4)})
    assert time.monotonic() - t0 < base * 5 + 1                # killed, not waited for
    monkeypatch.setattr(program_mod, "COMPILE_LIMIT_FACTOR", 50.0)
    cand = prog.link_config({tu.tu_id: Pipeline().with_knob("unroll-count", 4)})
    assert subprocess.run([cand.binary], capture_output=True).returncode == 0


def test_no_link_in_the_build_log_names_the_likely_cause(wrapper, env, tmp_path):
    """Compiles recorded, the link not (QuickJS with CONFIG_LTO=y: -flto links pass through): the
    message says so, and names CMake's linker launcher only in a CMake project."""
    import pytest
    from autopass_cc.tuning.program import BuildLogError
    d = write_project(str(tmp_path / "p"), SRC)
    for name in SRC:
        run([wrapper, "-O2", "-c", name], d, env)
    run(["clang-19", "main.o", "work.o", "lib.o", "-o", "prog"], d, env)
    with pytest.raises(BuildLogError) as e:
        Program(d, "prog", str(tmp_path / "scratch"))
    assert "-flto" in str(e.value) and "CMAKE" not in str(e.value)
    open(os.path.join(d, "CMakeLists.txt"), "w").close()
    with pytest.raises(BuildLogError) as e:
        Program(d, "prog", str(tmp_path / "scratch"))
    assert "-DCMAKE_C_LINKER_LAUNCHER=autopass-cc" in str(e.value)


def test_a_configure_check_link_is_not_recorded(wrapper, env, tmp_path):
    """libtool's configure links conftest.c with conftstm.o (its nm check; seen on FLAC): a probe,
    kept out of the build log like the compiles of conftest.c."""
    from autopass_cc import buildlog
    d = write_project(str(tmp_path / "p"), {"conftstm.c": "int v;\n", "conftest.c": "extern int v;\nint main(void){return v;}\n"})
    run([wrapper, "-c", "conftstm.c"], d, env)
    run([wrapper, "-o", "conftest", "conftest.c", "conftstm.o"], d, env)
    run([wrapper, "-o", "prog", "conftest.c", "conftstm.o"], d, env)   # the same link, not a probe
    links = [r["output"] for r in buildlog.read(d) if r["kind"] == "link"]
    assert links == [os.path.join(d, "prog")], links
