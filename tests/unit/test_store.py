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
