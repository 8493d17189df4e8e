"""Never breaking a build (ARCHITECTURE.md decision 3), fault by fault, on a real multi-TU build
(tests/programs/kernels-make, make -j): a read-only, full, missing or corrupt cache, a cache
locked by another process, eight wrappers creating one fresh cache at once, a tuned pipeline that
no longer compiles, a wrapper killed in the middle of a compile.  Each time the build succeeds,
the objects are the ones plain clang-19 writes (byte for byte), the program's output is right,
nothing the user owns is lost, and ``autopass-cc stats --json`` counts the event where the cache
can be read."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from autopass_cc.store import HOT_TIMEOUT
from conftest import ROOT, run, stats

CLANG = shutil.which("clang-19")
pytestmark = [pytest.mark.skipif(CLANG is None, reason="clang-19 not installed")]


def sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tree(d: str) -> dict:
    """sha256 of every file the user owns (sources, Makefile), and of the objects."""
    return {os.path.relpath(p, d): sha(p) for p in glob.glob(os.path.join(d, "*")) if os.path.isfile(p)}


def sources(d: str) -> dict:
    return {k: v for k, v in tree(d).items() if k.endswith((".c", ".h")) or k in ("Makefile", "RUN", "BINARY")}


def objects(d: str) -> dict:
    return {k: v for k, v in tree(d).items() if k.endswith(".o")}


class Project:
    """kernels-make copied for one test, with the objects and output of a plain clang-19 build
    of the same tree (same paths: identical bytes expected)."""

    def __init__(self, d: str, env: dict, wrapper: str):
        self.d, self.env, self.wrapper = d, env, wrapper
        run(["make", f"CC={CLANG}", "-j2"], d, env)
        self.ref_objects = objects(d)
        self.ref_output = run("./kernels 40", d, env).stdout
        self.ref_deps = {p: open(os.path.join(d, p)).read() for p in os.listdir(d) if p.endswith(".d")}
        run(["make", "clean"], d, env)
        self.sources = sources(d)
        self.n_tus = len(glob.glob(os.path.join(d, "*.c")))
        time.sleep(0.05)  # copied sources are "too new" to cache for 20 ms (objcache.TOO_NEW_NS)

    def build(self, env=None, jobs=8, timeout=300) -> subprocess.CompletedProcess:
        env = env or self.env
        run(["make", "clean"], self.d, env)
        t0 = time.monotonic()
        r = run(["make", f"CC={self.wrapper}", f"-j{jobs}"], self.d, env, timeout=timeout)
        self.seconds = time.monotonic() - t0
        return r

    def check(self, r: subprocess.CompletedProcess, max_lines: int | None = None) -> list[str]:
        """The build's results are plain clang's; returns the autopass-cc lines it printed."""
        assert objects(self.d) == self.ref_objects
        assert run("./kernels 40", self.d, self.env).stdout == self.ref_output
        for name, text in self.ref_deps.items():
            assert open(os.path.join(self.d, name)).read() == text, name
        assert sources(self.d) == self.sources
        lines = [l for l in r.stderr.splitlines() if l.startswith("autopass-cc:")]
        assert not [l for l in r.stderr.splitlines() if "Traceback" in l], r.stderr
        if max_lines is not None:
            assert len(lines) <= max_lines, lines
        return lines


@pytest.fixture
def project(wrapper, env, program):
    return Project(program("kernels-make"), env, wrapper)


def _mount_tmpfs(path: str, size: str) -> None:
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); needs root or CAP_SYS_ADMIN")


def _umount(path: str) -> None:
    subprocess.run(["umount", "-l", path], capture_output=True)


# ---- the cache directory: read-only, full, missing ------------------------------------------
@pytest.mark.slow
def test_read_only_cache(project, env, tmp_path):
    cache = str(tmp_path / "ro-cache")
    if os.geteuid() == 0:
        _mount_tmpfs(cache, "16m")   # root ignores permissions: a read-only mount it cannot ignore
    env = {**env, "AUTOPASS_CACHE_DIR": cache}
    try:
        project.check(project.build(env))                      # fills the cache
        before = stats(project.wrapper, project.d, env)
        if os.geteuid() == 0:
            # The compile server's waiting children hold the cache open for writing (store.open_ahead),
            # which a remount read-only refuses ("busy"): stop it first, as its user would have to.
            run([project.wrapper, "server", "stop"], project.d, env)
            r = subprocess.run(["mount", "-o", "remount,ro", cache], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")
        else:
            for root, dirs, files in os.walk(cache):
                for n in dirs + files:
                    os.chmod(os.path.join(root, n), 0o555 if n in dirs else 0o444)
            os.chmod(cache, 0o555)
        r = project.build(env)
        lines = project.check(r, max_lines=project.n_tus)
        assert lines and all("cache" in l for l in lines), lines
        with open(os.path.join(project.d, "main.c"), "a") as f:
            f.write("\n")                                         # the user's file is theirs to change
    finally:
        if os.geteuid() == 0:
            subprocess.run(["mount", "-o", "remount,rw", cache], capture_output=True)
        else:
            for root, dirs, files in os.walk(cache):
                os.chmod(root, 0o755)
    after = stats(project.wrapper, project.d, env)             # readable, intact, nothing half-written
    assert after["objects_cached"] == before["objects_cached"] == project.n_tus
    assert after["object_hits"] + after["object_misses"] >= before["object_misses"]
    if os.geteuid() == 0:
        _umount(cache)


@pytest.mark.slow
def test_full_cache_disk(project, env, tmp_path):
    cache = str(tmp_path / "small")
    _mount_tmpfs(cache, "2m")  # the first build must fit (objects, SQLite logs, reserve)
    env = {**env, "AUTOPASS_CACHE_DIR": os.path.join(cache, "c")}
    try:
        project.check(project.build(env, jobs=2))
        # `stats` waits for compiles the compile server reported done to finish storing their
        # objects and counters (server.py): fill the disk at a quiet moment, not under them.
        stats(project.wrapper, project.d, env)
        filler = os.path.join(cache, "filler")
        with open(filler, "wb", buffering=0) as f:             # the disk is now full
            try:
                while True:
                    f.write(bytes(4096))
            except OSError:
                pass
        for name in ("matmul.c", "stencil.c"):                 # new contents: misses to store
            with open(os.path.join(project.d, name), "a") as f:
                f.write("\n/* changed */\n")
        project.ref_objects = None
        r = project.build(env, jobs=2)
        lines = [l for l in r.stderr.splitlines() if l.startswith("autopass-cc:")]
        assert len(lines) <= project.n_tus, lines
        assert run("./kernels 40", project.d, env).stdout == project.ref_output
        s = stats(project.wrapper, project.d, env)              # readable on the full disk
        assert s["errors_by_kind"].get("cache-full", 0) >= 1, s
        os.unlink(filler)
        s = stats(project.wrapper, project.d, env)
        assert s["misses"] >= project.n_tus, s
    finally:
        _umount(cache)


@pytest.mark.parametrize("where", ["under-a-file", "in-proc"])
def test_missing_cache_directory(project, env, tmp_path, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    cache = str(blocker / "cache") if where == "under-a-file" else "/proc/autopass-cc-cannot-exist/cache"
    env = {**env, "AUTOPASS_CACHE_DIR": cache}
    r = project.build(env)
    lines = project.check(r, max_lines=project.n_tus)
    assert len(lines) == project.n_tus and all("unavailable" in l for l in lines), lines   # one per compile
    s = run([project.wrapper, "stats", "--json"], project.d, env, check=False)
    assert s.returncode != 0 and s.stderr.startswith("autopass-cc:") and "Traceback" not in s.stderr


# ---- corrupt caches --------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("which", ["main-db", "objects-db"])
def test_garbage_over_the_database(project, env, which):
    project.check(project.build(env))
    cache = env["AUTOPASS_CACHE_DIR"]
    db = os.path.join(cache, "cache.db") if which == "main-db" else os.path.join(cache, "objects", "cache.db")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    with open(db, "wb") as f:
        f.write(os.urandom(64 * 1024))
    r = project.build(env)
    project.check(r)
    assert glob.glob(db + ".corrupt-*")                          # moved aside, not deleted
    s = stats(project.wrapper, project.d, env)
    assert s["errors_by_kind"].get("corrupt-cache", 0) >= 1, s
    if which == "objects-db":
        assert s["object_misses"] == 2 * project.n_tus, s       # rebuilt, then cached again
    else:                                                       # the counters restart; objects survive
        assert s["object_hits"] + s["object_misses"] == project.n_tus == s["hits"] + s["misses"], s
    project.check(project.build(env))
    assert stats(project.wrapper, project.d, env)["object_hits"] >= project.n_tus


@pytest.mark.slow
def test_corrupt_and_truncated_object_entries(project, env):
    project.check(project.build(env))
    objdir = os.path.join(env["AUTOPASS_CACHE_DIR"], "objects")
    con = sqlite3.connect(os.path.join(objdir, "cache.db"))
    rows = con.execute("SELECT rowid, filename, length(value) FROM Cache WHERE key LIKE 'obj/%'").fetchall()
    assert len(rows) == project.n_tus
    for i, (rowid, filename, length) in enumerate(rows):
        if filename:                                            # a value file: truncate or scribble
            path = os.path.join(objdir, filename)
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                if i % 2:
                    f.truncate(size // 2)
                else:
                    f.seek(size // 3)
                    f.write(b"\xde\xad\xbe\xef" * 8)
        elif i % 2:                                             # inline: truncated ...
            con.execute("UPDATE Cache SET value = substr(value, 1, ?) WHERE rowid = ?", (length // 2, rowid))
        else:                                                   # ... or eight bytes overwritten
            con.execute("UPDATE Cache SET value = CAST(substr(value, 1, ?) || X'DEADBEEFDEADBEEF' || substr(value, ?)"
                        " AS BLOB) WHERE rowid = ?", (length - 48, length - 39, rowid))
    con.commit()
    con.close()
    project.check(project.build(env))                           # every entry refused, clang ran
    s = stats(project.wrapper, project.d, env)
    assert s["errors_by_kind"].get("corrupt-object") == project.n_tus, s
    assert s["object_hits"] == 0 and s["object_misses"] == 2 * project.n_tus
    project.check(project.build(env))                           # and stored afresh
    assert stats(project.wrapper, project.d, env)["object_hits"] == project.n_tus


# ---- locks and concurrency -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("which", ["main-db", "objects-db"])
def test_cache_locked_by_another_process(project, env, which):
    project.check(project.build(env))
    for name in ("matmul.c", "sort.c"):
        with open(os.path.join(project.d, name), "a") as f:
            f.write("\n/* edited */\n")
    project.ref_objects = None
    time.sleep(0.05)
    cache = env["AUTOPASS_CACHE_DIR"]
    db = os.path.join(cache, "cache.db") if which == "main-db" else os.path.join(cache, "objects", "cache.db")
    holder = sqlite3.connect(db, timeout=1, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE Settings SET value = value WHERE key = 'count'")
    try:
        r = project.build(env, jobs=8, timeout=120)
        # Served compiles store their objects after the build has moved on: keep the lock until
        # every such store has met it (HOT_TIMEOUT), as a build going on for longer would.
        time.sleep(HOT_TIMEOUT + 1.0)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert project.seconds < 60, project.seconds                 # bounded: the hot path waits 2 s at most
    lines = [l for l in r.stderr.splitlines() if l.startswith("autopass-cc:")]
    assert len(lines) <= project.n_tus, lines
    assert run("./kernels 40", project.d, env).stdout == project.ref_output
    assert sources(project.d) == {**project.sources, **{k: v for k, v in sources(project.d).items()
                                                       if k in ("matmul.c", "sort.c")}}
    s = stats(project.wrapper, project.d, env)
    assert s["errors_by_kind"].get("cache-locked", 0) >= 1, s
    assert s["hits"] + s["misses"] == 2 * project.n_tus, s      # nothing lost: kept aside, then counted


@pytest.mark.slow
def test_eight_concurrent_wrappers_on_a_fresh_cache(project, env, tmp_path):
    for attempt in range(3):
        e = {**env, "AUTOPASS_CACHE_DIR": str(tmp_path / f"fresh-{attempt}")}
        r = project.build(e, jobs=8)
        assert project.check(r) == []                            # not one message
        s = stats(project.wrapper, project.d, e)
        assert s["hits"] + s["misses"] == project.n_tus, s
        assert (s["object_hits"], s["object_misses"], s["objects_cached"]) == (0, project.n_tus, project.n_tus), s
        assert s["internal_errors"] == 0, s
        r = project.build(e, jobs=8)
        assert project.check(r) == []
        s = stats(project.wrapper, project.d, e)
        assert s["hits"] + s["misses"] == 2 * project.n_tus and s["object_hits"] == project.n_tus, s


# ---- a tuned pipeline that no longer compiles ------------------------------------------------
def _store_raw_entry(project: str, source_name: str, pipeline: dict, env: dict) -> None:
    """Put an entry in the cache for one TU, bypassing validation (as an old or damaged cache
    could hold it)."""
    code = f"""
import sys
sys.path.insert(0, {ROOT!r})
from autopass_cc import buildlog, cachekey
from autopass_cc.invocation import classify_record
from autopass_cc.store import open_store
from autopass_cc.toolchain import compiler_identity
import subprocess
compiles, _ = buildlog.latest(buildlog.read({project!r}))
rec = next(r for r in compiles.values() if r["source"].endswith("/" + {source_name!r}))
inv = classify_record(rec)
pre = subprocess.run([rec["compiler"]] + cachekey.preprocess_args(inv), cwd=rec["cwd"], capture_output=True).stdout
key = cachekey.compute(inv, compiler_identity(rec["compiler"]), rec["cwd"], pre, project={project!r})
open_store().put_tuned(key.digest, key.tu_id, {{"pipeline": {pipeline!r}, "source": {source_name!r},
                       "material": key.material, "provenance": {{"session": "test"}}}})
"""
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=project)


@pytest.mark.slow
@pytest.mark.parametrize("pipeline,counter", [
    ({"opt_level": None, "flags": {}, "knobs": {}, "passes": "no-such-pass-in-llvm-19"}, "tuned-pipeline-failed"),
    ({"opt_level": None, "flags": {}, "knobs": {"knob-llvm-19-lacks": "1"}, "passes": None}, "pipeline-refused"),
    ({"opt_level": None, "flags": {}, "knobs": {}, "passes": None, "profile": "0" * 64}, "profile-missing"),
], ids=["opt-rejects-passes", "unknown-knob", "profile-gone"])
def test_tuned_pipeline_that_no_longer_compiles(project, env, pipeline, counter):
    with open(os.path.join(project.d, "autopass.toml"), "w") as f:
        f.write('run = "./kernels 40"\ntarget = "kernels"\n')
    project.check(project.build(env))
    _store_raw_entry(project.d, "stencil.c", pipeline, env)
    before = stats(project.wrapper, project.d, env)
    r = project.build(env)
    lines = project.check(r)
    assert len(lines) == 1 and "stencil.c" in lines[0] and "your own flags" in lines[0], lines
    s = stats(project.wrapper, project.d, env)
    assert s["errors_by_kind"].get(counter, 0) == before["errors_by_kind"].get(counter, 0) + 1, s
    assert s["hits"] + s["misses"] == 2 * project.n_tus


# ---- a wrapper killed mid-compile -------------------------------------------------------------
@pytest.mark.slow
def test_killed_wrapper_leaves_no_partial_object_in_the_cache(wrapper, env, tmp_path):
    d = tmp_path / "k"
    d.mkdir()
    body = "".join(f"double f{i}(double x) {{ return x * {i}.5 + f{i - 1}(x - 1) / (x + {i}); }}\n" for i in range(1, 400))
    (d / "big.c").write_text("double f0(double x) { return x; }\n" + body)
    os.utime(d / "big.c", ns=(time.time_ns() - 10 ** 10,) * 2)
    time.sleep(0.05)
    args = ["-O2", "-c", "big.c", "-o", "big.o"]
    run([CLANG] + args, d, env)
    ref = (d / "big.o").read_bytes()
    t0 = time.monotonic()
    run([wrapper, "-DPROBE"] + args, d, env)
    full = time.monotonic() - t0
    run([wrapper, "cache", "clear"], d, env)
    sys.path.insert(0, ROOT)
    from autopass_cc import objcache
    for i in range(12):
        (d / "big.o").unlink(missing_ok=True)
        p = subprocess.Popen([wrapper] + args, cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * (0.5 + i / 10))                         # around the end of the compile and the store
        p.send_signal(signal.SIGKILL)
        p.wait()
        time.sleep(0.3)                                           # the orphaned clang finishes
        con = sqlite3.connect(os.path.join(env["AUTOPASS_CACHE_DIR"], "objects", "cache.db"))
        rows = con.execute("SELECT filename, value FROM Cache WHERE key LIKE 'obj/%'").fetchall()
        con.close()
        for filename, value in rows:
            if filename:
                value = open(os.path.join(env["AUTOPASS_CACHE_DIR"], "objects", filename), "rb").read()
            entry = objcache.unpack_entry(value)
            assert entry is not None and entry[0] == ref              # whole, or not there at all
        assert not glob.glob(str(d / "big.o.autopass-tmp*"))
        if (d / "big.o").exists():
            assert (d / "big.o").read_bytes() == ref                 # clang's own temp-file-and-rename
    r = run([wrapper] + args, d, env)                             # the next compile is right
    assert (d / "big.o").read_bytes() == ref and r.stderr == ""


def test_unwritable_cache_scratch_never_fails_a_compile(project, env, tmp_path):
    """The object cache makes clang list the files it reads into <cache>/objects/tmp; when clang
    cannot write there (a full or broken cache disk: here the directory is /proc/self, where no
    file can be created), the compile must still succeed through the user's own command."""
    cache = str(tmp_path / "cache")
    env = {**env, "AUTOPASS_CACHE_DIR": cache}
    run([project.wrapper, "stats", "--json"], project.d, env)          # creates the caches
    os.makedirs(os.path.join(cache, "objects"), exist_ok=True)
    tmp = os.path.join(cache, "objects", "tmp")
    if os.path.isdir(tmp):
        os.rmdir(tmp)
    os.symlink("/proc/self", tmp)
    project.check(project.build(env, jobs=2))
    assert run("./kernels 40", project.d, env).stdout == project.ref_output
