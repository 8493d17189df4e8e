"""The store: entries round-trip, corrupt entries are misses, counters are atomic across processes."""

import multiprocessing
import os
import stat

import pytest

from autopass_cc.store import StoreUnavailable, open_store


def test_round_trip_and_stale_index(tmp_path):
    s = open_store(str(tmp_path / "c"))
    entry = {"pipeline": {"opt_level": "O2", "flags": {}, "knobs": {}, "passes": None}, "provenance": {"speedup": 1.1}}
    s.put_tuned("k1", "tu1", entry)
    assert s.get_tuned("k1")["pipeline"]["opt_level"] == "O2"
    assert s.get_by_tu("tu1")["key"] == "k1"
    assert s.get_tuned("k2") is None
    assert len(list(s.entries())) == 1
    assert s.clear() >= 2 and s.get_tuned("k1") is None


def test_corrupt_entry_is_a_counted_miss(tmp_path):
    s = open_store(str(tmp_path / "c"))
    s.put_tuned("k1", "tu1", {"pipeline": {}})
    raw = s._cache.get("tuned/k1")
    s._cache.set("tuned/k1", raw.replace('"O', '"X').replace("pipeline", "pipelinX"))
    assert s.get_tuned("k1") is None
    assert s.counters().get("error:corrupt-entry") == 1
    s._cache.set("tuned/k1", "not json at all")
    assert s.get_tuned("k1") is None


def _bump(d):
    s = open_store(d)
    for _ in range(50):
        s.incr("hit")
    s.close()


def test_counters_from_concurrent_processes_on_a_fresh_cache(tmp_path):
    d = str(tmp_path / "fresh")
    procs = [multiprocessing.Process(target=_bump, args=(d,)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    assert open_store(d).counters()["hit"] == 400


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_cache_raises_store_unavailable(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    os.chmod(d, stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(StoreUnavailable):
        open_store(str(d / "sub"), attempts=2)


# -- databases opened ahead by a compile-server spare (store.open_ahead) --------------------------
def _fresh_hot(d):
    """A cache with both hot-path databases (main and objects/), as diskcache creates them."""
    from autopass_cc import store
    for path in (d, os.path.join(d, "objects")):
        store._open_cache(path, None, 2).close()


def _assert_counted(d, counter: str, n: int) -> None:
    s = open_store(d)
    assert s.counters().get(counter) == n
    s.close()


def test_open_ahead_is_taken_by_a_call_on_the_same_cache(tmp_path):
    from autopass_cc import store
    d = str(tmp_path / "c")
    _fresh_hot(d)
    try:
        assert store.open_ahead(d)
        ahead = {p: db for p, (db, _) in store._AHEAD.items()}
        hs = store.HotStore(d)
        assert hs.main is ahead[os.path.join(d, "cache.db")]
        assert hs.objects() is ahead[os.path.join(d, "objects", "cache.db")]
        hs.incr("hit")
        hs.objects().put("obj/x", b"abc")
        hs.flush()
        assert not store._AHEAD
    finally:
        store.close_all()
    _assert_counted(d, "hit", 1)  # written through the connection opened ahead


def test_open_ahead_of_a_replaced_cache_is_not_used(tmp_path):
    """Anyone replacing the database file after the spare opened it (`rm -rf` of the cache): the
    call opens the new file; the old connection is abandoned -- neither written to nor closed
    (a close could checkpoint the old -wal into the file now in use)."""
    import shutil

    from autopass_cc import store
    d = str(tmp_path / "c")
    _fresh_hot(d)
    try:
        assert store.open_ahead(d)
        old = store._AHEAD[os.path.join(d, "cache.db")][0]
        shutil.rmtree(d)
        _fresh_hot(d)  # a new cache at the same path
        hs = store.HotStore(d)
        assert hs.main is not old and old in store._ABANDONED and old.con is not None
        hs.incr("miss")
        hs.flush()
    finally:
        store.close_all()
    _assert_counted(d, "miss", 1)


def test_open_ahead_never_creates_or_heals(tmp_path):
    from autopass_cc import store
    missing = str(tmp_path / "missing")
    assert not store.open_ahead(missing)
    assert not os.path.exists(missing) and not store._AHEAD
    d = str(tmp_path / "c")
    _fresh_hot(d)
    db = os.path.join(d, "cache.db")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    with open(db, "wb") as f:
        f.write(b"this is not a database" * 500)
    try:
        assert not store.open_ahead(d)
        assert not store._AHEAD
        assert open(db, "rb").read(22) == b"this is not a database"  # not moved aside by the spare
        assert not [n for n in os.listdir(d) if ".corrupt-" in n]
    finally:
        store.close_all()


def test_open_ahead_rereads_settings_when_taken(tmp_path):
    from autopass_cc import store
    d = str(tmp_path / "c")
    _fresh_hot(d)
    try:
        assert store.open_ahead(d)
        s = open_store(d, size_limit=12345678)  # another process changes the size limit meanwhile
        s.close()
        hs = store.HotStore(d, size_limit=12345678)
        assert hs.main.size_limit == 12345678
        hs2 = store.HotStore(d, size_limit=999)  # settings that do not fit: a fresh open, which puts them in
        assert hs2.main.size_limit == 999
    finally:
        store.close_all()


def test_open_ahead_with_files_changed_in_place_is_not_used(tmp_path):
    """Garbage written over the database in place (same inode), or its -wal/-shm removed: the
    connection opened ahead is not used; the call's own open finds the damage and heals it."""
    import glob

    from autopass_cc import store
    d = str(tmp_path / "c")
    _fresh_hot(d)
    db = os.path.join(d, "cache.db")
    try:
        assert store.open_ahead(d)
        old = store._AHEAD[db][0]
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        with open(db, "r+b") as f:
            f.write(os.urandom(64 * 1024))
        hs = store.HotStore(d)
        assert hs.main is not old and old in store._ABANDONED
        assert glob.glob(db + ".corrupt-*")
        hs.incr("miss")
        hs.flush()
    finally:
        store.close_all()
    _assert_counted(d, "miss", 1)


def test_put_many_is_one_transaction_diskcache_reads(tmp_path):
    """_DB.put_many stores small values inline and large ones in value files, as diskcache's
    set does (diskcache reads them back); get_many_inline answers for the inline ones only."""
    import diskcache

    from autopass_cc import store
    d = str(tmp_path / "c")
    _fresh_hot(d)
    db = store._DB(d, None, 2.0)
    try:
        db.put_many([("small", b"x" * 10), ("big", b"y" * 100_000), ("small", b"z" * 10)])
        assert db.get_many_inline(["small", "big", "missing"]) == {"small": b"z" * 10}
        with pytest.raises(Exception):
            db.put_many([("ok", b"1"), ("bad", [1, 2])])  # SQLite refuses a list inside the transaction
        assert db.get_many_inline(["ok"]) == {}        # ... and nothing of it was stored
    finally:
        store.close_all()
    c = diskcache.Cache(d)
    assert c.get("big") == b"y" * 100_000 and c.get("small") == b"z" * 10
    c.close()


def test_leaving_process_leaves_shared_connections_to_the_kernel(tmp_path):
    """close_all(leaving=True), before an exec or exit: connections opened ahead (other spares
    hold the same files) are not closed -- no checkpoint is due, and exec/exit release them;
    a connection this process opened itself, or one inside a transaction, is closed."""
    from autopass_cc import store
    d, other = str(tmp_path / "c"), str(tmp_path / "other")
    _fresh_hot(d)
    _fresh_hot(other)
    try:
        assert store.open_ahead(d)
        hs = store.HotStore(d)             # takes the main database opened ahead
        objs_ahead = store._AHEAD[os.path.join(d, "objects", "cache.db")][0]
        own = store.HotStore(other)        # opened by this process
        busy = store._DB(other, None, 2.0)
        busy.shared = True
        busy.con.execute("BEGIN IMMEDIATE")
        store.close_all(leaving=True)
        assert hs.main.con is not None and objs_ahead.con is not None
        assert own.main.con is None and busy.con is None
    finally:
        store.close_all()
