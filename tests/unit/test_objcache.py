"""The object cache's pure parts and its store: entry and manifest formats (a damaged one is
refused, never half-read), keys, the dependency-file path, the hot path's diskcache-compatible
store, and the hot path's JSON writers being byte-identical to json.dumps."""

import json
import os
import time

import pytest

from autopass_cc import buildlog, cachekey, objcache
from autopass_cc.invocation import Invocation, classify
from autopass_cc.store import HotStore, open_store, read_pending, save_pending

IDENT = {"version": "Debian clang version 19.1.7", "sha256": "a" * 64, "target": "x86_64-pc-linux-gnu"}


# ---- entries and manifests ----------------------------------------------------------------------
def test_entry_round_trip_and_every_damage_is_refused():
    blob = objcache.pack_entry(b"\x7fELF" + bytes(range(256)) * 40, b"x.o: x.c\n", b"", b"warning: w\n", None, "baseline")
    assert objcache.unpack_entry(blob) == (b"\x7fELF" + bytes(range(256)) * 40, b"x.o: x.c\n", b"", b"warning: w\n",
                                           None, "baseline")
    assert objcache.unpack_entry(objcache.pack_entry(b"o", None, b"", b"", ("xterm", ""), "p1"))[1] is None
    for cut in (0, 5, 11, 20, len(blob) // 2, len(blob) - 1):
        assert objcache.unpack_entry(blob[:cut]) is None, cut
    for pos in (0, 9, 30, len(blob) // 2, len(blob) - 1):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        assert objcache.unpack_entry(bytes(bad)) is None, pos
    assert objcache.unpack_entry(blob + b"extra") is None
    assert objcache.unpack_entry("text") is None and objcache.unpack_entry(None) is None


def test_manifest_round_trip_and_damage():
    recs = [{"files": [("x.c", 10, 1, 2, 3, "d" * 40)], "content": "c1", "tu_key": None}]
    blob = objcache.pack_manifest(recs)
    assert objcache.unpack_manifest(blob) == [dict(r) for r in recs]
    assert objcache.unpack_manifest(blob[:-1]) is None
    assert objcache.unpack_manifest(b"APCCMAN1" + b"\0" * 30) is None
    many = [{"files": [], "content": str(i)} for i in range(20)]
    assert len(objcache.unpack_manifest(objcache.pack_manifest(many))) == objcache.MAX_RECORDS


def test_match_by_stat_then_by_contents(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(objcache, "_DIGESTS", {})
    (tmp_path / "h.h").write_text("#define A 1\n")
    old = time.time_ns() - 10 ** 10
    os.utime("h.h", ns=(old, old))
    files, why = objcache.scan(["h.h"], time.time_ns() + 10 ** 9)
    assert why is None
    rec = {"files": files, "content": "c"}
    assert objcache.match([rec]) == (rec, False)
    os.utime("h.h", ns=(old + 5, old + 5))                 # touched, same contents
    assert objcache.match([rec]) == (rec, True)
    (tmp_path / "h.h").write_text("#define A 2\n")        # same size, other contents
    assert objcache.match([rec]) == (None, False)
    (tmp_path / "h.h").unlink()
    assert objcache.match([rec]) == (None, False)


def test_scan_refuses_too_new_and_temporal_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "new.h").write_text("int x;\n")
    assert objcache.scan(["new.h"], time.time_ns())[1].startswith("input too new")
    for text, word in [("const char *t = __TIME__;", "__TIME__"), ("char d[] = __DATE__;", "__DATE__"),
                       ('asm(".incbin \\"f\\"");', ".incbin"), ("#  embed \"data.bin\"", "#embed"),
                       ("#if __has_embed(<x>)\n#endif", "#embed")]:
        assert word in objcache.uncacheable_text(text.encode())
    assert objcache.uncacheable_text(b"/* embedded systems */ int embed_count;") is None


def test_listing_labels_resolve_to_the_file_clang_read(tmp_path, monkeypatch):
    """-dependency-dot prints absolute paths without their leading "/": a label names the file
    relative to the compile's directory or under /, and where both exist (and differ) the
    compile is not cached.  Real clang-19 output, the source in a subdirectory named like a
    top-level directory (usr/) to make both readings possible."""
    import subprocess
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.h").write_text("int h;\n")
    (tmp_path / "x.c").write_text('#include <stdio.h>\n#include "src/x.h"\nint main(void){return h;}\n')
    base = str(tmp_path / "listing")
    subprocess.run(["clang-19", "-c", "x.c", "-o", "x.o"] + objcache.listing_args(base, False), check=True)
    inv = classify(["-c", "x.c", "-o", "x.o"], str(tmp_path))
    paths, why = objcache.read_listing(base, inv)
    assert why is None and {"x.c", "/usr/include/stdio.h", "./src/x.h"} <= set(paths), paths
    assert all(os.path.isfile(p) for p in paths)
    # A usr/include/stdio.h here as well: the label is ambiguous, the compile not cached.
    (tmp_path / "usr" / "include").mkdir(parents=True)
    (tmp_path / "usr" / "include" / "stdio.h").write_text("/* not the system's */\n")
    assert objcache.read_listing(base, inv) == (None, "ambiguous file name usr/include/stdio.h")
    # The same file both ways (a compile run in /): the label is that file.
    (tmp_path / "y.c").write_text("#include <stdio.h>\nint y;\n")
    monkeypatch.chdir("/")
    y = str(tmp_path / "y.c")
    subprocess.run(["clang-19", "-c", y, "-o", str(tmp_path / "y.o")] + objcache.listing_args(base, False), check=True)
    paths, why = objcache.read_listing(base, classify(["-c", y, "-o", str(tmp_path / "y.o")], "/"))
    assert why is None and "usr/include/stdio.h" in paths, paths


@pytest.mark.parametrize("argv,expected", [
    (["-c", "x.c", "-o", "x.o"], None),
    (["-MD", "-c", "x.c", "-o", "out/x.o"], "out/x.d"),
    (["-MMD", "-c", "x.c", "-o", "out/x.b.o"], "out/x.b.d"),
    (["-MD", "-c", "x.c", "-o", "noext"], "noext.d"),
    (["-MD", "-c", "x.c", "-o", "dir.v/noext"], "dir.v/noext.d"),
    (["-MD", "-c", "src/x.c"], "x.d"),
    (["-MD", "-MF", "a.d", "-MFb.d", "-c", "x.c", "-o", "x.o"], "b.d"),
])
def test_depfile_path(argv, expected):
    inv = classify(argv, ".")
    assert isinstance(inv, Invocation)
    assert objcache.depfile_path(inv) == expected


# ---- keys ---------------------------------------------------------------------------------------
def _direct(argv, cwd="/p", env=None, src="s" * 40, ident=IDENT):
    inv = classify(argv, cwd)
    return cachekey.direct_key(inv, ident, cwd, cplusplus=False, native_cpu=None, environ=env or {},
                               source_digest=src)


def test_direct_key_ingredients():
    base = _direct(["-O2", "-c", "x.c", "-o", "x.o"])
    assert base == _direct(["-O2", "-c", "x.c", "-o", "x.o"])
    assert base == _direct(["-O2", "-c", "x.c", "-o", "elsewhere/y.o"])        # no depfile: path is out
    assert base != _direct(["-O3", "-c", "x.c", "-o", "x.o"])
    assert base != _direct(["-O2", "-DA=1", "-c", "x.c", "-o", "x.o"])         # preprocessor options are in
    assert base != _direct(["-O2", "-c", "x.c", "-o", "x.o"], cwd="/q")
    assert base != _direct(["-O2", "-c", "x.c", "-o", "x.o"], src="t" * 40)
    assert base != _direct(["-O2", "-c", "x.c", "-o", "x.o"], env={"CPATH": "/inc"})
    assert base == _direct(["-O2", "-c", "x.c", "-o", "x.o"], env={"HOME": "/root"})
    assert base != _direct(["-O2", "-c", "x.c", "-o", "x.o"], ident={**IDENT, "sha256": "b" * 64})
    md = _direct(["-O2", "-MD", "-MF", "a.d", "-c", "x.c", "-o", "x.o"])
    assert md == _direct(["-O2", "-MD", "-MF", "other.d", "-c", "x.c", "-o", "x.o"])   # -MF path is out
    assert md != _direct(["-O2", "-MD", "-MF", "a.d", "-c", "x.c", "-o", "y.o"])       # the default target
    assert cachekey.object_key("c", "baseline") != cachekey.object_key("c", "0123456789abcdef")
    assert cachekey.content_key("d", [("a.h", "1")]) != cachekey.content_key("d", [("a.h", "2")])


def test_refusals():
    env = {}
    for argv in (["-gsplit-dwarf", "-c", "x.c"], ["--coverage", "-c", "x.c"], ["-grecord-command-line", "-c", "x.c"],
                 ["--sysroot=/s", "-c", "x.c"], ["-MD", "-MJ", "cdb.json", "-c", "x.c"], ["-Wp,-DX", "-c", "x.c"]):
        inv = classify(argv, ".")
        assert isinstance(inv, Invocation), argv
        assert cachekey.object_cache_refusal(inv, env), argv
    inv = classify(["-O2", "-c", "x.c"], ".")
    assert cachekey.object_cache_refusal(inv, {}) is None
    assert cachekey.object_cache_refusal(inv, {"CC_PRINT_HEADERS": "1"})


@pytest.mark.parametrize("obj", [
    {"a": [1, "é", None, True, False], "b": {"z": "\udcff", "y": []}, "c": 'x"y\\\n\t'},
    {"schema": 1, "compiler": {"version": "v", "sha256": None}, "codegen_args": ["-O2", "-DX=\"1 2\""], "cwd": None},
    [], {}, "plain",
])
def test_canon_json_is_json_dumps(obj):
    assert cachekey.canon_json(obj) == json.dumps(obj, sort_keys=True)


def test_buildlog_dumps_is_json_dumps():
    rec = {"kind": "compile", "cwd": "/p/ö", "args": ["-O2", "-DS=\"a b\"", "\udcfe"], "key": None, "ok": True,
           "n": 3, "time": 1700000000.123456, "nested": {"x": [1.5, False]}}
    assert buildlog.dumps(rec) == json.dumps(rec)
    assert buildlog.dumps({"f": float("nan")}) == json.dumps({"f": float("nan")})


# ---- the hot path's store and diskcache read each other ------------------------------------
def test_hot_store_and_diskcache_interoperate(tmp_path):
    d = str(tmp_path / "c")
    hot = HotStore(d)
    hot.incr("miss")
    hot.incr("miss")
    hot.incr("object_hit")
    hot.flush()
    objs = hot.objects()
    objs.put("obj/small", b"s" * 100)
    objs.put("obj/large", b"L" * 100_000)                 # a value file
    objs.put("obj/large", b"M" * 90_000)                  # replaced: the old file goes
    hot.close()
    s = open_store(d)
    assert s.counters() == {"miss": 2, "object_hit": 1}
    assert s.objects().get("obj/small") == b"s" * 100 and s.objects().get("obj/large") == b"M" * 90_000
    assert s.object_entries() == 2
    vals = [f for _r, _d, fs in os.walk(os.path.join(d, "objects")) for f in fs if f.endswith(".val")]
    assert len(vals) == 1
    s.put_tuned("k1", "tu1", {"pipeline": {"opt_level": "O2"}})
    s.incr("miss")
    s.objects().set("obj/from-diskcache", b"D" * 50_000)
    s.close()
    hot = HotStore(d)
    assert hot.has_tu("tu1") and not hot.has_tu("tu2")
    assert hot.get_tuned("k1")["pipeline"]["opt_level"] == "O2" and hot.get_by_tu("tu1")["key"] == "k1"
    assert hot.main.get("stat/miss") == 3
    assert hot.objects().get("obj/from-diskcache") == b"D" * 50_000
    hot.objects().delete("obj/from-diskcache")
    assert hot.objects().get("obj/from-diskcache") is None
    hot.close()
    s = open_store(d)
    assert s.clear() >= 4 and s.object_entries() == 0 and s.counters() == {}


def test_hot_store_evicts_least_recently_used(tmp_path):
    d = str(tmp_path / "c")
    open_store(d, size_limit=400_000).close()
    hot = HotStore(d, size_limit=400_000)
    objs = hot.objects()
    for i in range(4):
        objs.put(f"obj/{i}", bytes([i]) * 60_000)
        time.sleep(0.01)
    assert objs.get("obj/0") is not None                  # used: now the most recent
    hot.flush()
    for i in range(4, 10):
        objs.put(f"obj/{i}", bytes([i]) * 60_000)
        time.sleep(0.01)
    assert objs.volume() <= 400_000 + 70_000
    assert objs.get("obj/9") is not None and objs.get("obj/1") is None


def test_pending_counters_are_counted(tmp_path):
    d = str(tmp_path / "c")
    s = open_store(d)
    s.incr("miss")
    save_pending(d, {"stat/miss": 2, "stat/error:cache-locked": 1})
    save_pending(d, {"stat/miss": 1})
    assert read_pending(d) == {"miss": 3, "error:cache-locked": 1}
    assert s.counters() == {"miss": 4, "error:cache-locked": 1}
    s.zero_counters()
    assert s.counters() == {}


def test_digest_cache_spares_reading_and_follows_every_change(tmp_path, monkeypatch):
    """scan's digest cache (ccache's inode cache): a file whose device, inode, size, mtime and
    ctime have a known digest is not read again; any write -- even one keeping the size and
    the mtime -- changes the ctime, hence the key, and the file is read and hashed again."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(objcache, "_DIGESTS", {})
    (tmp_path / "h.h").write_text("#define A 1\n")
    old = time.time_ns() - 10 ** 10
    os.utime("h.h", ns=(old, old))
    time.sleep(0.05)  # the ctime the utime gave is now older than TOO_NEW_NS
    learnt = []
    files, why = objcache.scan(["h.h"], time.time_ns(), lambda keys: {}, learnt)
    assert why is None and learnt == [(objcache.inode_key(os.stat("h.h")), files[0][5])]
    table = {k: ("f" * 40).encode() for k, _ in learnt}     # a digest only the cache can know
    objcache._DIGESTS.clear()       # (as another process would: this one remembers what it read)
    seen = []
    again, _ = objcache.scan(["h.h"], time.time_ns(), lambda keys: seen.extend(keys) or table, [])
    assert again[0][5] == "f" * 40 and seen == [k for k, _ in learnt]
    (tmp_path / "h.h").write_text("#define A 2\n")        # same size ...
    os.utime("h.h", ns=(old, old))                         # ... and the same mtime
    time.sleep(0.05)
    relearnt = []
    third, _ = objcache.scan(["h.h"], time.time_ns(), lambda keys: table, relearnt)
    assert third[0][5] == objcache.digest(b"#define A 2\n") and len(relearnt) == 1
    # a known digest never vouches for a file that is too new: it is read, and refused
    (tmp_path / "h.h").write_text("#define A 3\n")
    table[objcache.inode_key(os.stat("h.h"))] = ("f" * 40).encode()
    assert objcache.scan(["h.h"], time.time_ns(), lambda keys: table, [])[1].startswith("input too new")


def test_whole_second_timestamps_need_two_seconds_to_be_trusted():
    """On a file system that keeps whole seconds, a file written 100 ms ago may be written
    again within the same second with the same times: it is too new for 2 s, not 20 ms."""
    from types import SimpleNamespace
    now = 1_000_000 * 10 ** 9 + 100_000_000
    fine = SimpleNamespace(st_mtime_ns=now - 100_000_000 + 1, st_ctime_ns=now - 100_000_000 + 1)
    coarse = SimpleNamespace(st_mtime_ns=now - 100_000_000, st_ctime_ns=now - 100_000_000)
    assert not objcache.too_new(fine, now) and objcache.too_new(coarse, now)
    assert not objcache.too_new(SimpleNamespace(st_mtime_ns=now - 3 * 10 ** 9 - 100_000_000,
                                                st_ctime_ns=now - 3 * 10 ** 9 - 100_000_000), now)


def test_scan_remembers_digests_by_stat_identity(tmp_path, monkeypatch):
    """A server worker scans the same headers compile after compile: digests it has seen are not
    looked up again; a file written since has another inode key, so it is read again."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(objcache, "_DIGESTS", {})
    (tmp_path / "a.h").write_text("int a;\n")
    (tmp_path / "b.h").write_text("int b;\n")
    old = time.time_ns() + 10 * objcache.TOO_NEW_NS
    asked = []

    def lookup(keys):
        asked.append(list(keys))
        return {}
    first, why = objcache.scan(["a.h", "b.h"], old, lookup, [])
    assert why is None and len(asked[0]) == 2
    again, _ = objcache.scan(["a.h", "b.h"], old, lookup, [])
    assert again == first and len(asked) == 1          # both known: no query
    time.sleep(0.01)
    (tmp_path / "b.h").write_text("int b2;\n")
    later = time.time_ns() + 10 * objcache.TOO_NEW_NS
    third, _ = objcache.scan(["a.h", "b.h"], later, lookup, [])
    assert asked[-1] == [objcache.inode_key(os.stat("b.h"))]   # only the changed file is asked for
    assert third[0] == first[0] and third[1][5] == objcache.digest(b"int b2;\n") != first[1][5]
