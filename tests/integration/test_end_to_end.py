"""The walking skeleton on real programs and real build systems: build through the wrapper, tune
with a small budget, rebuild from the cache, same output, hits counted; tuned pipelines really
reach the object; tuning on link; the user's binary survives Ctrl-C and SIGKILL."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import run, stats

pytestmark = pytest.mark.slow


def sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def objects(d: str) -> dict:
    return {os.path.relpath(p, d): sha(p) for p in glob.glob(os.path.join(d, "**", "*.o"), recursive=True)}


def init(wrapper, cwd, env, run_cmd, target, on_miss="off", budget=3):
    run([wrapper, "init", "--run", run_cmd, "--target", target, "--on-miss", on_miss, "--budget", str(budget)], cwd, env)


def test_makefile_project_build_tune_rebuild(wrapper, env, program):
    d = program("kernels-make")
    init(wrapper, d, env, "./kernels 40", "kernels")
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    reference = run("./kernels 40", d, env).stdout
    n_tus = len(glob.glob(os.path.join(d, "*.c")))
    s = stats(wrapper, d, env)
    assert s["misses"] == n_tus and s["hits"] == 0
    assert s["passthrough_by_reason"].get("link") == 1
    log = [json.loads(l) for l in open(os.path.join(d, ".autopass", "buildlog.jsonl"))]
    assert sum(r["kind"] == "compile" for r in log) == n_tus and sum(r["kind"] == "link" for r in log) == 1

    before_bin = (sha(os.path.join(d, "kernels")), os.stat(os.path.join(d, "kernels")).st_mtime_ns)
    before_objs = objects(d)
    r = run([wrapper, "tune", "--budget", "3", "--json", "--quiet"], d, env)
    report = json.loads(r.stdout)
    # Byte-identical binaries are not timed and do not consume the budget.
    assert sum(t["verdict"] != "same-binary" for t in report["trials"]) == 3
    for t in report["trials"]:
        assert t["verdict"] in ("faster", "slower", "inconclusive", "failed", "same-binary")
        assert t["changes"], t
    assert os.path.isfile(report["files"]["json"]) and os.path.isfile(report["files"]["summary"])
    # The user's binary and objects are exactly as before.
    assert (sha(os.path.join(d, "kernels")), os.stat(os.path.join(d, "kernels")).st_mtime_ns) == before_bin
    assert objects(d) == before_objs
    assert not os.path.exists(os.path.join(d, ".autopass", "swap.json"))

    run(["make", "clean"], d, env)
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert run("./kernels 40", d, env).stdout == reference
    s2 = stats(wrapper, d, env)
    assert s2["hits"] == n_tus, s2          # every TU now has an entry (tuned or "keep the user's flags")
    assert s2["tuned_tus"] == n_tus


def _store_pipeline(project: str, source_name: str, pipeline_dict: dict, env: dict) -> None:
    """Put a pipeline in the cache for one TU exactly as a session would."""
    code = f"""
import os, sys
os.chdir({project!r})
from autopass_cc import buildlog
from autopass_cc.invocation import classify_record
from autopass_cc.pipeline import Pipeline
from autopass_cc.store import open_store
from autopass_cc.toolchain import compiler_identity
from autopass_cc.tuning.session import tu_cache_key
from autopass_cc.tuning.program import TU
compiles, _ = buildlog.latest(buildlog.read({project!r}))
rec = next(r for r in compiles.values() if os.path.basename(r["source"]) == {source_name!r})
t = TU(0, rec["tu_id"], rec["source"], {source_name!r}, rec["output"], rec["cwd"], rec["compiler"], rec["args"],
       classify_record(rec))
key = tu_cache_key(t, compiler_identity(rec["compiler"]), {project!r})
s = open_store()
s.put_tuned(key.digest, key.tu_id, {{"pipeline": Pipeline.from_dict({pipeline_dict!r}).to_dict(), "source": {source_name!r},
            "material": key.material, "provenance": {{"session": "test", "status": "won"}}}})
"""
    subprocess.run(["python3", "-c", code], env=env, check=True)


@pytest.mark.parametrize("pipeline", [
    {"knobs": {"unroll-count": "4", "inline-threshold": "900"}, "flags": {"slp-vectorize": "off"}},
    {"opt_level": "O2", "passes": "default<O2>"},
], ids=["flags-and-knobs", "split-route-passes"])
def test_tuned_pipeline_reaches_the_object(wrapper, env, program, pipeline):
    d = program("kernels-make")
    init(wrapper, d, env, "./kernels 40", "kernels")
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    reference = run("./kernels 40", d, env).stdout
    baseline_objs = objects(d)
    _store_pipeline(d, "stencil.c", pipeline, env)
    run(["make", "clean"], d, env)
    r = run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert "autopass-cc:" not in r.stderr, r.stderr
    tuned_objs = objects(d)
    changed = {k for k in tuned_objs if tuned_objs[k] != baseline_objs.get(k)}
    assert changed == {"stencil.o"}, changed
    assert run("./kernels 40", d, env).stdout == reference
    s = stats(wrapper, d, env)
    assert s["hits"] == 1 and s["internal_errors"] == 0
    assert os.path.exists(os.path.join(d, "stencil.d"))  # dependency file still written by clang


def test_a_session_records_a_profile_and_its_pipelines_use_it(wrapper, env, program):
    """Instrumented PGO as a candidate (tuning/pgo.py): the session records a profile of the run,
    the offline proposer's first trial compiles the hot TUs with it; a pipeline naming it
    changes the object and not the output; a profile gone from the cache is one warning line,
    the user's flags and a counter; ``pgo = false`` records none."""
    d = program("kernels-make")
    init(wrapper, d, env, "./kernels 40", "kernels")
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    reference = run("./kernels 40", d, env).stdout
    baseline_objs = objects(d)
    before_bin = sha(os.path.join(d, "kernels"))
    report = json.loads(run([wrapper, "tune", "--budget", "1", "--json", "--quiet"], d, env).stdout)
    digest = report["pgo"]["digest"]
    profile = os.path.join(env["AUTOPASS_CACHE_DIR"], "profiles", digest + ".profdata")
    assert report["pgo"]["raw_files"] >= 1 and os.path.getsize(profile) == report["pgo"]["bytes"] > 0
    with open(profile, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest
    # IR-level instrumentation (program.INSTRUMENT), the kind clang's manual recommends for PGO
    shown = run(["llvm-profdata-19", "show", profile], d, env).stdout
    assert shown.startswith("Instrumentation level: IR"), shown[:200]
    first = report["trials"][0]
    assert first["agent"] == "profile" and first["edits"] == [f"profile={digest[:12]}"], first
    assert sha(os.path.join(d, "kernels")) == before_bin and objects(d) == baseline_objs
    assert not glob.glob(os.path.join(d, "**", "*.profraw"), recursive=True)

    # The profile trial may have won on this machine's noise: then the session stored it for
    # the hot TUs.  Put those back to the user's flags so that only stencil.c names the profile.
    for entry in report.get("stored") or []:
        if entry["status"] == "won" and os.path.basename(entry["source"]) != "stencil.c":
            _store_pipeline(d, os.path.basename(entry["source"]), {}, env)
    _store_pipeline(d, "stencil.c", {"profile": digest}, env)
    run(["make", "clean"], d, env)
    r = run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert "autopass-cc:" not in r.stderr and "warning" not in r.stderr, r.stderr
    tuned_objs = objects(d)
    assert {k for k in tuned_objs if tuned_objs[k] != baseline_objs.get(k)} == {"stencil.o"}
    assert run("./kernels 40", d, env).stdout == reference

    ex = json.loads(run([wrapper, "explain", "stencil.c", "--json", "--no-evidence"], d, env).stdout)
    assert ex["profile"] == {"path": profile, "intact": True} and ex["pipeline"] == [f"profile={digest[:12]}"]
    os.unlink(profile)
    assert "MISSING" in run([wrapper, "explain", "stencil.c", "--no-evidence"], d, env).stdout
    run(["make", "clean"], d, env)
    r = run(["make", f"CC={wrapper}", "-j2"], d, env)
    lines = [l for l in r.stderr.splitlines() if l.startswith("autopass-cc:")]
    assert len(lines) == 1 and "stencil.c" in lines[0] and "missing or damaged" in lines[0], r.stderr
    assert objects(d) == baseline_objs
    assert stats(wrapper, d, env)["errors_by_kind"].get("profile-missing") == 1

    report = json.loads(run([wrapper, "tune", "--budget", "1", "--json", "--quiet"], d,
                            {**env, "AUTOPASS_PGO": "0"}).stdout)
    assert "pgo" not in report and all(t["agent"] != "profile" for t in report["trials"])


def test_autotools_project(wrapper, env, program):
    d = program("lzpack-autotools")
    run(["autoreconf", "-fi"], d, env)
    run(["./configure", f"CC={wrapper}"], d, env)
    s = stats(wrapper, d, env)
    assert s["passthrough"] > 0          # configure's link and preprocessor probes passed through
    run(["make", "-j2"], d, env)
    run(["make", "check"], d, env)
    init(wrapper, d, env, "src/lzpack 20", "src/lzpack")
    # The build log is written only when autopass.toml exists: rebuild once with it in place.
    run(["make", "clean"], d, env)
    run(["make", "-j2"], d, env)
    reference = run("src/lzpack 20", d, env).stdout
    report = json.loads(run([wrapper, "tune", "--budget", "2", "--json", "--quiet"], d, env).stdout)
    assert sum(t["verdict"] != "same-binary" for t in report["trials"]) == 2
    run(["make", "clean"], d, env)
    run(["make", "-j2"], d, env)
    run(["make", "check"], d, env)
    assert run("src/lzpack 20", d, env).stdout == reference
    s = stats(wrapper, d, env)
    assert s["hits"] >= len(report["stored"]) > 0


def test_libtool_shared_library_project(wrapper, env, program):
    """autotools + libtool: the target is libtool's wrapper script (tuned after the build, not at
    its link), the hot code sits in a shared libtool library (.libs/libtally.so.1.1.0) that the session relinks and swaps in; afterwards the
    user's library, program and objects are as built, and a clean rebuild hits the cache."""
    d = program("tally-libtool")
    env = {**env, "AUTOPASS_PROFILE": "callgrind"}    # the suite's default is "none"
    run(["autoreconf", "-fi"], d, env)
    run(["./configure", f"CC={wrapper}"], d, env)
    init(wrapper, d, env, "src/tally 40", "src/tally", on_miss="link", budget=2)
    r = run(["make", "-j2"], d, env)
    # on_miss = "link" sees the link of src/.libs/tally as the target's, but libtool writes the
    # wrapper script the run command starts only after it: one line says to tune after the build.
    assert "run `autopass-cc tune` once the build is done" in r.stderr, r.stderr
    assert not glob.glob(os.path.join(d, ".autopass", "sessions", "*", "session.json"))
    run(["make", "check"], d, env)
    reference = run("src/tally 40", d, env).stdout
    lib = os.path.realpath(os.path.join(d, "lib", ".libs", "libtally.so"))
    binary = os.path.join(d, "src", ".libs", "tally")
    before = {p: (sha(p), os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in (lib, binary)}
    before_objs = objects(d)
    report = json.loads(run([wrapper, "tune", "--budget", "2", "--json", "--quiet"], d, env).stdout)
    assert report["target"] == binary
    # objects, remarks, IR and callgrind files go; the report stays
    sdir = os.path.dirname(report["files"]["json"])
    assert sorted(set(os.listdir(sdir)) & {"scratch", "evidence", "profile"}) == [], os.listdir(sdir)
    hot = [os.path.basename(t["source"]) for t in report["tus"]]
    assert "tokenize.c" in hot[:3], hot          # the library's TUs are profiled and tuned
    assert sum(t["verdict"] != "same-binary" for t in report["trials"]) == 2
    assert {p: (sha(p), os.stat(p).st_ino, os.stat(p).st_mtime_ns) for p in (lib, binary)} == before
    assert objects(d) == before_objs
    assert not os.path.exists(os.path.join(d, ".autopass", "swap.json"))
    # libtool compiles each library source twice (.libs/x.o with -fPIC, x.o for libtally.a):
    # explain shows the one the session stored and names the other; --output picks one.
    ex = json.loads(run([wrapper, "explain", "lib/tokenize.c", "--json", "--no-evidence"], d, env).stdout)
    assert ex["other_compiles"] == ["lib/tokenize.o"], ex          # the stored (PIC) compile comes first
    assert ex["lookup"] == "hit" and ex["compile"]["output"].endswith("lib/.libs/tokenize.o"), ex
    ex = json.loads(run([wrapper, "explain", "lib/tokenize.c", "--output", "lib/.libs/tokenize.o", "--json",
                         "--no-evidence"], d, env).stdout)
    assert ex["lookup"] == "hit" and "-fPIC" in ex["compile"]["args"], ex
    run(["make", "clean"], d, env)
    run(["make", "-j2"], d, env)
    run(["make", "check"], d, env)
    assert run("src/tally 40", d, env).stdout == reference
    s = stats(wrapper, d, env)
    assert s["hits"] >= len(report["stored"]) > 0 and s["internal_errors"] == 0


def test_explain_prefers_the_compile_the_target_links(wrapper, env, tmp_path):
    """A source compiled twice (CMake's shared and static libraries, libjpeg-turbo's libturbojpeg):
    explain shows the object the configured target links, even when another compile came later,
    and names the other one."""
    d = tmp_path / "p"
    (d / "other").mkdir(parents=True)
    (d / "a.c").write_text("int a(int x) { return x * 3; }\n")
    (d / "main.c").write_text("int a(int);\nint main(void) { return a(2) - 6; }\n")
    init(wrapper, d, env, "./prog", "prog")
    for cmd in (["-O2", "-c", "a.c", "-o", "a.o"], ["-O2", "-c", "main.c", "-o", "main.o"],
                ["a.o", "main.o", "-o", "prog"], ["-O1", "-c", "a.c", "-o", "other/a.o"]):
        assert run([wrapper] + cmd, d, env).returncode == 0
    ex = json.loads(run([wrapper, "explain", "a.c", "--json", "--no-evidence"], d, env).stdout)
    assert ex["compile"]["output"] == str(d / "a.o") and ex["other_compiles"] == ["other/a.o"], ex


def test_cxx_cmake_project_with_launcher(wrapper, env, program):
    """C++17 through CMake's launchers (CMAKE_CXX_COMPILER_LAUNCHER and, so that the session sees
    the link, CMAKE_CXX_LINKER_LAUNCHER = autopass-cc): templates and
    lambdas inlined into each algorithm's TU, mangled names from callgrind mapped to those TUs, a
    static library; the session leaves the user's files as built and a fresh build dir hits."""
    d = program("graphs-cxx")
    env = {**env, "AUTOPASS_PROFILE": "callgrind"}
    init(wrapper, d, env, "./build/graphs 1", "build/graphs")
    configure = ["cmake", "-S", ".", "-B", "build", "-G", "Ninja", "-DCMAKE_CXX_COMPILER=clang++-19",
                 f"-DCMAKE_CXX_COMPILER_LAUNCHER={wrapper}"]
    run(configure, d, env)
    run(["cmake", "--build", "build"], d, env)
    # The compiler launcher alone: compiles are logged, the link is not; the session says what to add.
    r = run([wrapper, "tune", "--budget", "2"], d, env, check=False)
    assert r.returncode != 0 and "CMAKE_CXX_LINKER_LAUNCHER=autopass-cc" in r.stderr, r.stderr
    configure.append(f"-DCMAKE_CXX_LINKER_LAUNCHER={wrapper}")
    run(configure, d, env)
    run(["cmake", "--build", "build"], d, env)                # relinks only: the link rule changed
    reference = run("./build/graphs 1", d, env).stdout
    binary = os.path.join(d, "build", "graphs")
    before = (sha(binary), os.stat(binary).st_mtime_ns)
    before_objs = objects(d)
    report = json.loads(run([wrapper, "tune", "--budget", "2", "--json", "--quiet"], d, env).stdout)
    weights = {os.path.basename(t["source"]): t["weight"] for t in report["tus"]}
    assert report["profiled"] and {"graph.cpp", "rank.cpp", "shortest.cpp"} <= set(weights), weights
    assert any(f.startswith("_ZN6graphs") for t in report["tus"] for f, _ in t["hot_functions"])
    assert sum(t["verdict"] != "same-binary" for t in report["trials"]) == 2
    assert (sha(binary), os.stat(binary).st_mtime_ns) == before and objects(d) == before_objs
    shutil.rmtree(os.path.join(d, "build"))
    run(configure, d, env)
    run(["cmake", "--build", "build"], d, env)
    assert run("./build/graphs 1", d, env).stdout == reference
    s = stats(wrapper, d, env)
    assert s["hits"] >= len(report["stored"]) > 0 and s["internal_errors"] == 0


def test_tuning_on_link(wrapper, env, program):
    d = program("kernels-make")
    init(wrapper, d, env, "./kernels 40", "kernels", on_miss="link", budget=2)
    r = run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert "tuning kernels before linking it" in r.stderr
    assert "session done" in r.stderr
    reference = run("./kernels 40", d, env).stdout
    paths = glob.glob(os.path.join(d, ".autopass", "sessions", "*", "session.json"))
    with open(max(paths, key=os.path.getmtime)) as f:
        done = json.load(f)
    # the line says what the session did: a confirmed speedup, or the user's flags kept
    if done["winner"]:
        assert f"speedup {done['speedup']:.3f}x (CI" in r.stderr
    else:
        assert "no significant speedup, your flags are kept" in r.stderr and "speedup 1.000x" not in r.stderr
    # A make that only relinks starts no session: the TUs it did not compile again still have
    # "miss" records, but the session examined them (seen on QuickJS: every make tuned again).
    os.unlink(os.path.join(d, "kernels"))
    r1 = run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert "tuning" not in r1.stderr, r1.stderr
    assert run("./kernels 40", d, env).stdout == reference
    run(["make", "clean"], d, env)
    r2 = run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert "tuning" not in r2.stderr          # every TU has an entry now: no second session
    assert run("./kernels 40", d, env).stdout == reference
    env_off = dict(env, AUTOPASS_TUNE="0", AUTOPASS_CACHE_DIR=env["AUTOPASS_CACHE_DIR"] + "-2")
    run(["make", "clean"], d, env)
    r3 = run(["make", f"CC={wrapper}", "-j2"], d, env_off)
    assert "tuning" not in r3.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_session_leaves_the_binary_as_it_was(wrapper, env, program, sig):
    d = program("kernels-make")
    init(wrapper, d, env, "./kernels 40", "kernels", budget=50)
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    target = os.path.join(d, "kernels")
    before = (sha(target), os.stat(target).st_mtime_ns, os.stat(target).st_ino)
    # A runner that starts the suite in the background (``cmd &`` in a script) leaves SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler: give the session the default back.
    p = subprocess.Popen([wrapper, "tune", "--quiet"], cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    journal = os.path.join(d, ".autopass", "swap.json")
    deadline = time.time() + 120
    while not os.path.exists(journal) and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    assert os.path.exists(journal), p.communicate()
    time.sleep(2.0)  # let it get into trials
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert p.returncode == 1 and b"interrupted" in err, err
        assert not os.path.exists(journal)
    else:
        # SIGKILL: nothing could run; the next session repairs the swap before anything else.
        r = run([wrapper, "tune", "--budget", "1", "--quiet"], d, env)
        assert "restored" in r.stdout + r.stderr or "removed" in r.stdout + r.stderr
    assert (sha(target), os.stat(target).st_mtime_ns, os.stat(target).st_ino) == before
    assert not os.path.exists(target + ".autopass-tmp")
    run([wrapper, "tune", "--budget", "1", "--quiet"], d, env)   # the lock was released


@pytest.mark.parametrize("run_cmd,expect", [
    ("./kernels 40; date +%N", "differ"),
    ("./kernels 40 && exit 3", "fails"),
], ids=["nondeterministic-output", "failing-run-command"])
def test_bad_run_command_is_one_clear_line(wrapper, env, program, run_cmd, expect):
    d = program("kernels-make")
    init(wrapper, d, env, run_cmd, "kernels")
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    before = sha(os.path.join(d, "kernels"))
    r = run([wrapper, "tune", "--budget", "2", "--quiet"], d, env, check=False)
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("autopass-cc:") and expect in lines[0], r.stderr
    assert sha(os.path.join(d, "kernels")) == before


def test_explain_hit_then_stale_after_an_edit(wrapper, env, program):
    d = program("kernels-make")
    init(wrapper, d, env, "./kernels 40", "kernels")
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    _store_pipeline(d, "stencil.c", {"knobs": {"unroll-count": "4"}}, env)
    out = run([wrapper, "explain", "stencil.c", "--no-evidence"], d, env).stdout
    assert "HIT" in out and "unroll-count=4" in out and "preprocessed sha256" in out
    with open(os.path.join(d, "stencil.c"), "a") as f:
        f.write("\nint autopass_test_extra(int x) { return x + 1; }\n")
    j = json.loads(run([wrapper, "explain", "stencil.c", "--json", "--no-evidence"], d, env).stdout)
    assert j["lookup"] == "stale" and j["differs_from_tuned"] == ["preprocessed_sha256"]
    assert j["pipeline"] == ["unroll-count=4"]
    # A rebuild uses the stale pipeline (same TU, new content) and counts it as a stale hit.
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert stats(wrapper, d, env)["stale_hits"] == 1
    r = run([wrapper, "explain", "nosuch.c"], d, env, check=False)
    assert r.returncode == 1 and r.stderr.startswith("autopass-cc:") and len(r.stderr.splitlines()) == 1


def test_link_proceeds_when_a_session_holds_the_lock(wrapper, env, program):
    import fcntl
    d = program("kernels-make")
    init(wrapper, d, env, "./kernels 40", "kernels", on_miss="link", budget=2)
    os.makedirs(os.path.join(d, ".autopass"), exist_ok=True)
    with open(os.path.join(d, ".autopass", "session.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert "another tuning session is running" in r.stderr and "linking without tuning" in r.stderr
    assert run("./kernels 40", d, env).returncode == 0


def test_link_session_whose_run_needs_a_later_program_says_to_tune_after_the_build(wrapper, env, program):
    """The run command also starts a program the build makes after the target (libjpeg-turbo:
    cjpeg, then djpeg): the session at the target's link cannot run it; the link goes on and the
    line says to run `autopass-cc tune` once the build is done."""
    d = program("kernels-make")
    init(wrapper, d, env, "./kernels 40 && ./made-later", "kernels", on_miss="link", budget=2)
    r = run(["make", f"CC={wrapper}", "-j2"], d, env)
    assert r.returncode == 0, r.stderr
    assert "tuning skipped at this link: the run command fails on the untuned baseline build" in r.stderr
    assert "run `autopass-cc tune` once the build is done" in r.stderr
    assert run("./kernels 40", d, env).returncode == 0


def test_tus_kept_at_the_users_flags_skip_the_preprocessor(wrapper, env, tmp_path, monkeypatch):
    """After a session, most TUs keep the user's flags: compiling them needs no exact cache key,
    so no preprocessor run (measured +42 ms per TU of interp-cmake before); a TU that ever got a
    faster pipeline still computes its key."""
    from conftest import write_project
    from autopass_cc import buildlog
    from autopass_cc.invocation import classify_record
    from autopass_cc.pipeline import Pipeline
    from autopass_cc.store import open_store
    from autopass_cc.toolchain import compiler_identity
    from autopass_cc.tuning.program import TU
    from autopass_cc.tuning.session import tu_cache_key

    log = tmp_path / "calls.log"
    cc = tmp_path / "clang"
    cc.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec clang-19 "$@"\n')
    cc.chmod(0o755)
    src = {"a.c": "int a(int x) { return x * 3; }\n", "b.c": "int b(int x) { return x + 5; }\n"}
    d = write_project(str(tmp_path / "p"), src)
    env = dict(env, AUTOPASS_CC=str(cc), AUTOPASS_OBJECT_CACHE="0")
    for name in src:
        run([wrapper, "-O2", "-c", name], d, env)
    for k, v in env.items():
        if k.startswith("AUTOPASS_"):
            monkeypatch.setenv(k, v)
    compiles, _ = buildlog.latest(buildlog.read(d))
    store = open_store()

    def seed(name: str, pipeline: Pipeline) -> None:
        rec = next(r for r in compiles.values() if r["source"].endswith(name))
        t = TU(0, rec["tu_id"], rec["source"], rec["source"], rec["output"], rec["cwd"], rec["compiler"],
               rec["args"], classify_record(rec))
        key = tu_cache_key(t, compiler_identity(rec["compiler"]), d)
        store.put_tuned(key.digest, key.tu_id, {"pipeline": pipeline.to_dict(), "source": name,
                                                "material": key.material, "provenance": {"status": "test"}})

    def preprocessed() -> set:
        log.write_text("")
        for name in src:
            run([wrapper, "-O2", "-c", name], d, env)
        return {name for name in src for line in log.read_text().splitlines() if " -E " in f" {line} " and name in line}

    seed("a.c", Pipeline())
    seed("b.c", Pipeline().with_knob("inline-threshold", 300))
    before = stats(wrapper, d, env)["hits"]
    assert preprocessed() == {"b.c"}
    assert stats(wrapper, d, env)["hits"] == before + 2
    seed("a.c", Pipeline().with_knob("inline-threshold", 300))   # a.c got a faster pipeline once
    seed("a.c", Pipeline())                                      # ... and later kept the flags
    assert preprocessed() == {"a.c", "b.c"}
    store.close()
