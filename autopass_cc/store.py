"""The cache of tuned pipelines and the statistics counters, on diskcache (SQLite + files).

Layout inside the cache directory (``config.cache_dir()``):

* ``tuned/<key digest>``  -> entry for one exact TU (see :class:`Store.put_tuned`);
* ``tu/<tu id>``          -> the key digest and entry last stored for that TU identity (the stale
  index of ARCHITECTURE.md decision 2);
* ``stat/<counter>``      -> integers (hits, misses, passthrough:<reason>, error:<kind> ...).

Every entry is stored as JSON text with its SHA-256 and the schema version; an entry that does
not check out is a miss (and counted), never a wrong pipeline.  diskcache handles the size limit
(least-recently-*stored* eviction by default; we ask for ``least-recently-used``).

Opening a fresh cache from many processes at once can fail with SQLite's "database is locked"
(diskcache issue tracker); :func:`open_store` retries with backoff, then raises StoreUnavailable,
which the wrapper turns into a one-line message and the user's own compile.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from . import SCHEMA_VERSION
from .errors import AutopassError


class StoreUnavailable(AutopassError):
    """The cache directory cannot be opened or written (read-only, full, locked, corrupt)."""


def _seal(obj: dict) -> str:
    body = json.dumps(obj, sort_keys=True)
    return json.dumps({"schema": SCHEMA_VERSION, "sha256": hashlib.sha256(body.encode()).hexdigest(), "body": body})


def _unseal(text) -> dict | None:
    try:
        outer = json.loads(text)
        if outer.get("schema") != SCHEMA_VERSION:
            return None
        body = outer["body"]
        if hashlib.sha256(body.encode()).hexdigest() != outer["sha256"]:
            return None
        return json.loads(body)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


class Store:
    """Tuned-pipeline entries and counters.  Use :func:`open_store` to make one."""

    def __init__(self, cache):
        self._cache = cache
        self.directory = cache.directory

    # -- tuned pipelines ------------------------------------------------------------------
    def get_tuned(self, digest: str) -> dict | None:
        """The entry stored under a cache-key digest, or None (missing or corrupt: a corrupt one
        bumps ``error:corrupt-entry``)."""
        raw = self._cache.get("tuned/" + digest)
        if raw is None:
            return None
        entry = _unseal(raw)
        if entry is None:
            self.incr("error:corrupt-entry")
        return entry

    def get_by_tu(self, tu_id: str) -> dict | None:
        """The entry last stored for a TU identity (any content), or None."""
        raw = self._cache.get("tu/" + tu_id)
        return _unseal(raw) if raw is not None else None

    def put_tuned(self, digest: str, tu_id: str, entry: dict) -> None:
        """Store ``entry`` = ``{"pipeline": Pipeline.to_dict(), "provenance": {...}, "material":
        {...}, "source": str}`` under both indexes.  Provenance holds session id, speedup (ratio),
        CI, date, budget."""
        sealed = _seal({**entry, "key": digest, "tu_id": tu_id})
        self._cache.set("tuned/" + digest, sealed)
        self._cache.set("tu/" + tu_id, sealed)

    def entries(self):
        """Every valid tuned entry, as dicts (for ``stats`` and ``explain``)."""
        for k in list(self._cache.iterkeys()):
            if isinstance(k, str) and k.startswith("tuned/"):
                e = _unseal(self._cache.get(k))
                if e is not None:
                    yield e

    # -- counters -------------------------------------------------------------------------
    def incr(self, counter: str, n: int = 1) -> None:
        """Atomically add ``n`` to a counter."""
        self._cache.incr("stat/" + counter, n, default=0)

    def counters(self) -> dict:
        """All counters as ``{name: int}``."""
        out = {}
        for k in list(self._cache.iterkeys()):
            if isinstance(k, str) and k.startswith("stat/"):
                out[k[5:]] = self._cache.get(k, 0)
        return out

    def clear(self, stats_too: bool = True) -> int:
        """Remove tuned entries (and counters); returns how many keys were removed."""
        removed = 0
        for k in list(self._cache.iterkeys()):
            if isinstance(k, str) and (k.startswith(("tuned/", "tu/", "obj/")) or (stats_too and k.startswith("stat/"))):
                removed += bool(self._cache.delete(k))
        return removed

    def volume(self) -> int:
        """Bytes used on disk."""
        return self._cache.volume()

    def close(self) -> None:
        self._cache.close()


def open_store(directory: str | None = None, size_limit: int | None = None, attempts: int = 8) -> Store:
    """Open (creating if needed) the cache at ``directory`` (default ``config.cache_dir()``).

    ``size_limit`` in bytes (default 2 GiB).  Retries "database is locked" with jittered
    exponential backoff (``attempts`` tries, about 2 s in all), then raises StoreUnavailable."""
    import diskcache  # imported here: only compiles that reach the cache pay for it
    from .config import cache_dir
    directory = directory or cache_dir()
    delay = 0.01
    last = None
    for _ in range(attempts):
        try:
            os.makedirs(directory, exist_ok=True)
            cache = diskcache.Cache(directory, size_limit=size_limit or 2 * 1024 ** 3,
                                    eviction_policy="least-recently-used", timeout=5)
            return Store(cache)
        except Exception as e:  # sqlite3.OperationalError, OSError, diskcache errors
            last = e
            if isinstance(e, PermissionError) or "readonly" in str(e) or "read-only" in str(e):
                break
            import random
            time.sleep(delay * (1 + random.random()))
            delay *= 2
    raise StoreUnavailable(f"cache {directory} unavailable ({type(last).__name__}: {last}); "
                           "check AUTOPASS_CACHE_DIR and its permissions or free space")
