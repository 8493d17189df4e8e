"""The object cache with real clang-19: a warm compile restores exactly what clang writes (object,
dependency file, diagnostics), invalidates on any input change, refuses what it cannot cache, and
obeys AUTOPASS_OBJECT_CACHE, the size limit and ``cache clear``."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sysconfig
import time
from pathlib import Path

import pytest

SCRIPTS = Path(sysconfig.get_path("scripts"))
AP_CC = str(SCRIPTS / "autopass-cc")
CLANG = shutil.which("clang-19")

pytestmark = [
    pytest.mark.skipif(CLANG is None, reason="clang-19 not installed"),
    pytest.mark.skipif(not os.path.exists(AP_CC), reason="autopass-cc console script not installed"),
]


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("AUTOPASS_") and k not in ("CCC_OVERRIDE_OPTIONS", "MAKEFLAGS", "MFLAGS")}
    e.update(AUTOPASS_CACHE_DIR=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "xdg"), LC_ALL="C")
    return e


def _old(*paths):
    """Backdate files: a file modified (mtime or ctime) less than 20 ms before a compile is never
    recorded; utime sets the ctime to now, hence the pause."""
    for p in paths:
        os.utime(p, ns=(time.time_ns() - 10 ** 10, time.time_ns() - 10 ** 10))
    time.sleep(0.05)


@pytest.fixture
def work(tmp_path):
    d = tmp_path / "proj"
    (d / "inc").mkdir(parents=True)
    (d / "x.c").write_text('#include <stdio.h>\n#include "x.h"\n#include "inc/y.h"\n'
                           "int sum(const int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += a[i] * K + Y;"
                           " return s; }\nvoid hello(void) { puts(\"hello\"); }\n")
    (d / "x.h").write_text("#define K 3\nint sum(const int *a, int n);\n")
    (d / "inc" / "y.h").write_text("#define Y 5\n")
    (d / "forced.h").write_text("#define FORCED 1\n")
    (d / "warn.c").write_text("int f(int x) { int unused; return x; }\nint g(void) { }\n")
    (d / "err.c").write_text("int f(int x) { return x + ; }\n")
    (d / "clock.c").write_text('const char *when = __DATE__ " " __TIME__;\n')
    _old(*[p for p in d.rglob("*") if p.is_file()])
    return d


def run(cmd, cwd, env, **kw):
    return subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env, capture_output=True, timeout=120, **kw)


def stats(env, cwd):
    r = run([AP_CC, "stats", "--json"], cwd, env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def reference(work, env, args, outputs):
    """Bare clang-19's exit code, stdout, stderr and output files for ``args``; the files are then
    removed so that the wrapper's run writes them afresh."""
    r = run([CLANG] + args, work, env)
    files = {}
    for o in outputs:
        p = work / o
        files[o] = p.read_bytes() if p.exists() else None
        if p.exists():
            p.unlink()
    return r, files


def check_same(work, env, args, outputs, ref):
    r = run([AP_CC] + args, work, env)
    ref_r, ref_files = ref
    assert (r.returncode, r.stdout, r.stderr) == (ref_r.returncode, ref_r.stdout, ref_r.stderr)
    for o in outputs:
        p = work / o
        assert (p.read_bytes() if p.exists() else None) == ref_files[o], o
    return r


@pytest.mark.parametrize("args,outputs", [
    (["-O2", "-c", "x.c", "-o", "x.o"], ["x.o"]),
    (["-O2", "-c", "x.c"], ["x.o"]),
    (["-O0", "-g", "-c", "x.c", "-o", "x.o"], ["x.o"]),
    (["-O2", "-MD", "-MF", "deps.d", "-MT", "custom-target", "-c", "x.c", "-o", "x.o"], ["x.o", "deps.d"]),
    (["-O2", "-MMD", "-MP", "-c", "x.c", "-o", "sub.x.o"], ["sub.x.o", "sub.x.d"]),
    (["-O3", "-MD", "-c", "x.c", "-o", "noext"], ["noext", "noext.d"]),
    (["-O2", "-include", "forced.h", "-MMD", "-c", "x.c", "-o", "x.o"], ["x.o", "x.d"]),
], ids=["plain", "default-output", "debug-info", "MD-MF-MT", "MMD-MP", "no-extension", "forced-include"])
def test_cold_then_warm_is_byte_identical(work, env, args, outputs):
    ref = reference(work, env, args, outputs)
    check_same(work, env, args, outputs, ref)          # cold: clang runs, the result is stored
    for o in outputs:
        (work / o).unlink()
    check_same(work, env, args, outputs, ref)          # warm: restored from the cache
    s = stats(env, work)
    assert (s["object_misses"], s["object_hits"], s["objects_cached"]) == (1, 1, 1), s
    assert s["misses"] == 2 and s["internal_errors"] == 0
    # a fresh file's permissions, as clang creates its outputs
    assert (work / outputs[0]).stat().st_mode & 0o777 == 0o644


def test_diagnostics_replayed_byte_for_byte(work, env):
    args = ["-O2", "-Wall", "-c", "warn.c", "-o", "warn.o"]
    ref = reference(work, env, args, ["warn.o"])
    assert b"warning:" in ref[0].stderr
    check_same(work, env, args, ["warn.o"], ref)
    check_same(work, env, args, ["warn.o"], ref)
    assert stats(env, work)["object_hits"] == 1


def test_failures_are_never_cached(work, env):
    args = ["-O2", "-c", "err.c", "-o", "err.o"]
    ref = reference(work, env, args, ["err.o"])
    assert ref[0].returncode == 1
    for _ in range(2):
        check_same(work, env, args, ["err.o"], ref)
    s = stats(env, work)
    assert s["object_hits"] == 0 and s["objects_cached"] == 0 and s["object_misses"] == 2


def test_any_input_change_is_a_miss(work, env):
    args = ["-O2", "-MMD", "-c", "x.c", "-o", "x.o"]
    run([AP_CC] + args, work, env)
    # a header two levels down changes: a miss, and the new object is clang's
    (work / "inc" / "y.h").write_text("#define Y 6\n")
    _old(work / "inc" / "y.h")
    ref = reference(work, env, args, ["x.o", "x.d"])
    check_same(work, env, args, ["x.o", "x.d"], ref)
    assert stats(env, work)["object_hits"] == 0
    # touched but unchanged: still a hit (contents are compared when the stat data differ)
    os.utime(work / "x.h", ns=(time.time_ns() - 5 * 10 ** 9, time.time_ns() - 5 * 10 ** 9))
    check_same(work, env, args, ["x.o", "x.d"], ref)
    assert stats(env, work)["object_hits"] == 1
    # other flags, other source: misses
    run([AP_CC, "-O3"] + args[1:], work, env)
    (work / "x.c").write_text((work / "x.c").read_text() + "int extra;\n")
    _old(work / "x.c")
    ref2 = reference(work, env, args, ["x.o", "x.d"])
    check_same(work, env, args, ["x.o", "x.d"], ref2)
    s = stats(env, work)
    assert s["object_hits"] == 1 and s["object_misses"] == 4, s


def test_system_headers_are_in_the_manifest_even_with_MMD(work, env):
    run([AP_CC, "-O2", "-MMD", "-c", "x.c", "-o", "x.o"], work, env)
    stats(env, work)  # waits for the store a compile-server child finishes after the call returned
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from autopass_cc.store import HotStore\nfrom autopass_cc import objcache\n"
            "o = HotStore().objects()\n"
            "rows = o.con.execute(\"SELECT key FROM Cache WHERE key LIKE 'man/%%'\").fetchall()\n"
            "recs = objcache.unpack_manifest(o.get(rows[0][0].decode()))\n"
            "print('\\n'.join(f[0] for f in recs[0]['files']))\n") % str(Path(__file__).resolve().parents[2])
    r = run(["python3", "-c", code], work, env)
    assert r.returncode == 0, r.stderr
    listed = r.stdout.decode().split()
    listed = [os.path.normpath(p) for p in listed]
    assert "/usr/include/stdio.h" in listed and "x.h" in listed and "x.c" in listed, listed
    assert "inc/y.h" in listed


def test_time_macros_are_not_cached(work, env):
    for _ in range(2):
        r = run([AP_CC, "-O2", "-c", "clock.c", "-o", "clock.o"], work, env)
        assert r.returncode == 0
    s = stats(env, work)
    assert s["object_hits"] == 0 and s["objects_cached"] == 0 and s["object_uncacheable"] == 2
    assert s["object_uncacheable_by_reason"] == {"uses __DATE__": 2}, s
    text = run([AP_CC, "stats"], work, env).stdout.decode()
    assert "    uses __DATE__  " in text and text.index("not cacheable") < text.index("uses __DATE__"), text


def test_too_new_header_is_not_recorded(work, env):
    """A header stamped at or after the compile's start (being written, or a clock ahead) is not
    trusted: its contents may not be what clang read."""
    (work / "x.h").write_text("#define K 4\nint sum(const int *a, int n);\n")
    future = time.time_ns() + 5 * 10 ** 9
    os.utime(work / "x.h", ns=(future, future))
    run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, env)
    s = stats(env, work)
    assert s["objects_cached"] == 0 and s["object_uncacheable"] == 1
    assert s["object_uncacheable_by_reason"] == {"input too new": 1}, s  # (the path is not in the label)


def test_disabled_by_environment_and_config(work, env):
    off = {**env, "AUTOPASS_OBJECT_CACHE": "0"}
    for _ in range(2):
        assert run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, off).returncode == 0
    s = stats(env, work)
    assert (s["object_hits"], s["object_misses"], s["objects_cached"]) == (0, 0, 0)
    (work / "autopass.toml").write_text("object_cache = false\n")
    run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, env)
    assert stats(env, work)["object_misses"] == 0


def test_size_limit_evicts_least_recently_used(work, env):
    env = {**env, "AUTOPASS_CACHE_SIZE": "400K"}   # objects of ~75 KB each: about four fit
    big = "".join(f"double f{i}(double x) {{ return x * {i}.5 + f{i - 1 if i else 0}(x - 1); }}\n" for i in range(1, 40))
    (work / "big.c").write_text("double f0(double x) { return x; }\n" + big)
    _old(work / "big.c")
    for v in range(12):
        assert run([AP_CC, "-O2", f"-DV={v}", "-c", "big.c", "-o", "big.o"], work, env).returncode == 0
    s = stats(env, work)
    assert s["object_misses"] == 12 and 0 < s["objects_cached"] < 12, s
    run([AP_CC, "-O2", "-DV=11", "-c", "big.c", "-o", "big.o"], work, env)   # the newest is there
    run([AP_CC, "-O2", "-DV=0", "-c", "big.c", "-o", "big.o"], work, env)    # the oldest was evicted
    s = stats(env, work)
    assert (s["object_hits"], s["object_misses"]) == (1, 13), s


def test_cache_clear_removes_objects(work, env):
    run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, env)
    assert stats(env, work)["objects_cached"] == 1
    assert run([AP_CC, "cache", "clear"], work, env).returncode == 0
    s = stats(env, work)
    assert s["objects_cached"] == 0 and s["object_misses"] == 0
    run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, env)
    assert stats(env, work)["object_misses"] == 1


def _on_tty(cmd, cwd, env):
    """Run ``cmd`` with stderr on a pseudo-terminal (stdout a pipe); (exit code, stderr bytes)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(c) for c in cmd], cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, b"".join(chunks)


def test_terminal_diagnostics_are_clangs_own(work, env):
    env = {**env, "TERM": "xterm-256color"}
    args = ["-O2", "-Wall", "-c", "warn.c", "-o", "warn.o"]
    ref = _on_tty([CLANG] + args, work, env)
    assert b"\x1b[" in ref[1]   # clang colours a terminal
    assert _on_tty([AP_CC] + args, work, env) == ref     # cold
    assert _on_tty([AP_CC] + args, work, env) == ref     # warm
    # the entry captured for a terminal is not replayed into a pipe (a miss), and vice versa
    plain = run([CLANG] + args, work, env)
    got = run([AP_CC] + args, work, env)
    assert (got.returncode, got.stderr) == (plain.returncode, plain.stderr)
    s = stats(env, work)
    assert s["object_hits"] == 1 and s["object_misses"] == 2, s


@pytest.mark.parametrize("kind", ["cold", "warm"])
def test_compile_path_imports_stay_light(work, env, kind):
    """ARCHITECTURE.md decision 9: a compile imports neither click, openai, yaml, the tuning code,
    nor (measured here: 3-20 ms each per process) diskcache, json, re, hashlib, subprocess."""
    # The cache and the compiler's identity exist (creating them goes through diskcache and
    # hashes the compiler, once per cache).
    run([AP_CC, "-O2", "-c", "warn.c", "-o", "warn.o"], work, env)
    if kind == "warm":
        run([AP_CC, "-O2", "-MD", "-c", "x.c", "-o", "x.o"], work, env)
    # The standalone wrapper as the client runs it when no compile server serves (server.py),
    # i.e. what every compile imports in a fresh process.
    from autopass_cc.server import fallback_argv
    cmd = fallback_argv([AP_CC, "-O2", "-MD", "-c", "x.c", "-o", "x.o"])
    r = run(cmd[:1] + ["-X", "importtime"] + cmd[1:], work, env)
    assert r.returncode == 0, r.stderr
    imported = {line.split("|")[-1].strip() for line in r.stderr.decode().splitlines() if line.startswith("import time:")}
    assert "autopass_cc.objcache" in imported
    heavy = {"click", "openai", "yaml", "diskcache", "json", "re", "hashlib", "subprocess", "sqlite3", "typing",
             "dataclasses", "autopass_cc.tuning", "autopass_cc.pipeline", "tomllib"}
    assert not heavy & imported, heavy & imported
    s = stats(env, work)
    assert (s["object_misses"], s["object_hits"]) == (2, 1 if kind == "warm" else 0), s
