"""The caches: tuned pipelines, statistics counters and the object cache, on diskcache (SQLite + files).

Two diskcache directories under the cache directory (``config.cache_dir()``):

* ``<cache>/`` (the *main* cache, never large):

  * ``tuned/<key digest>``  -> entry for one exact TU (see :meth:`Store.put_tuned`);
  * ``tu/<tu id>``          -> the key digest and entry last stored for that TU identity (the stale
    index of ARCHITECTURE.md decision 2);
  * ``flagsonly/<tu id>``   -> 1 while every entry stored for that TU identity keeps the user's
    flags (a compile of it then needs no exact key, hence no preprocessor run: measured +42 ms
    per TU of interp-cmake without this); ``everfaster/<tu id>`` -> 1 once a faster pipeline was
    stored for it (the mark never comes back: an older content may still have a tuned entry);
  * ``stat/<counter>``      -> integers (hit, miss, object_hit, object_miss, passthrough:<reason>,
    error:<kind> ...);

* ``<cache>/objects/`` (the *object cache*, objcache.py; bounded by ``cache_size`` with
  least-recently-used eviction): ``man/<direct key>`` manifests and ``obj/<object key>`` entries
  (object file, dependency file, stdout, stderr, checksummed).

Beside them, ``<cache>/profiles/<sha256>.profdata``: instrumentation profiles that sessions
recorded and tuned pipelines name by digest (pipeline.profile_path); small, content-addressed,
never evicted, removed by :meth:`Store.clear`.

The two are separate so that evicting objects never evicts a tuned pipeline or a counter
(diskcache evicts from one table, by one policy).

Every tuned entry is stored as JSON text with its SHA-256 and the schema version; an entry that
does not check out is a miss (and counted), never a wrong pipeline.  diskcache handles the size
limit (we ask for ``least-recently-used``).

The compile hot path does not import diskcache (its import alone costs 12-20 ms, as much as the
whole rest of the wrapper): :class:`HotStore` reads and writes diskcache's own tables (``Cache``
and ``Settings`` in ``cache.db``) with the sqlite3 C module, with diskcache's semantics -- values
below ``disk_min_file_size`` inline, larger ones in ``<2 hex>/<2 hex>/<28 hex>.val`` files written
before the row that names them is committed, ``access_time`` updated on reads (the LRU order),
eviction by ``access_time`` once ``volume() > size_limit`` -- and falls back to diskcache itself to
create a cache or to change its settings.  tests/unit/test_store.py checks that each side reads
what the other wrote.

Faults (ARCHITECTURE.md decision 3): opening a fresh cache from many processes at once can fail
with SQLite's "database is locked" (diskcache issue tracker): :func:`open_store` retries with
backoff.  Only "locked"/"busy" errors are retried; a read-only, missing or full directory fails at
once with StoreUnavailable.  A database that is not a database any more (garbage over
``cache.db``) is moved aside (``cache.db.corrupt-<time>``) under a lock and a fresh one is
created, so a corrupt cache heals instead of failing every compile.  On the hot path, SQLite's busy
timeout is short (:data:`HOT_TIMEOUT`): a cache locked by another process costs a compile at most
that long, then the compile goes on without the cache.
"""

from __future__ import annotations

import os
import time

from . import SCHEMA_VERSION
from .errors import AutopassError

DBNAME = "cache.db"
OBJECTS_DIR = "objects"
#: Recorded instrumentation profiles (pipeline.profile_path).
PROFILES_DIR = "profiles"
#: SQLite busy timeout (seconds) on the compile hot path.  Transactions there last milliseconds;
#: a lock held longer is someone else's long transaction, and the compile must not wait for it.
HOT_TIMEOUT = 2.0
#: File in the cache directory written by :meth:`Store.clear` (its mtime: when it was cleared).
CLEARED = "cleared"
#: diskcache's value modes (diskcache.core.MODE_*).
MODE_RAW, MODE_BINARY, MODE_TEXT = 1, 2, 3
EVICTION_POLICY = "least-recently-used"
DEFAULT_SIZE = 2 * 1024 ** 3


class StoreUnavailable(AutopassError):
    """The cache directory cannot be opened or written (read-only, full, locked, corrupt)."""


def _seal(obj: dict) -> str:
    import hashlib
    import json
    body = json.dumps(obj, sort_keys=True)
    return json.dumps({"schema": SCHEMA_VERSION, "sha256": hashlib.sha256(body.encode()).hexdigest(), "body": body})


def _unseal(text) -> dict | None:
    import hashlib
    import json
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


def _is_locked(e: BaseException) -> bool:
    text = str(e).lower()
    return "locked" in text or "busy" in text or type(e).__name__ == "Timeout"


def _is_corrupt(e: BaseException) -> bool:
    text = str(e).lower()
    return "not a database" in text or "malformed" in text or "file is encrypted" in text


def error_kind(e: BaseException) -> str:
    """The counter name (after ``error:``) for a cache failure."""
    import errno
    text = str(e).lower()
    no = getattr(e, "errno", None)
    if _is_locked(e):
        return "cache-locked"
    if no in (errno.ENOSPC, errno.EDQUOT) or "full" in text or "no space" in text or "disk i/o" in text:
        return "cache-full"
    if no in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in text or "read-only" in text:
        return "cache-read-only"
    if _is_corrupt(e):
        return "corrupt-cache"
    return "cache-write"


#: A file of this size is kept in the cache directory and removed when the disk is full, so that
#: the compile that finds the disk full can still count it (SQLite needs room for its -wal and
#: -shm files even to read a database).  Re-created when the cache is next opened by diskcache.
RESERVE, RESERVE_BYTES = "reserve", 256 * 1024


def _ensure_reserve(directory: str) -> None:
    path = os.path.join(directory, RESERVE)
    if os.path.exists(path):
        return
    from .toolchain import _write_atomic
    _write_atomic(path, bytes(RESERVE_BYTES))


def release_reserve(directory: str) -> bool:
    """Remove the reserve file (the disk is full); True if there was one."""
    try:
        os.unlink(os.path.join(directory, RESERVE))
        return True
    except OSError:
        return False


PENDING = "stats.pending"


def save_pending(directory: str, counters: dict) -> None:
    """Append counts that could not be written to the database (locked, full) to
    ``<cache>/stats.pending``, one ``name<TAB>n`` line each, in one ``write`` on an O_APPEND file
    (whole under concurrent writers).  Silent on failure."""
    lines = "".join(f"{k[5:] if k.startswith('stat/') else k}\t{int(n)}\n" for k, n in counters.items()
                    if "\n" not in k and "\t" not in k)
    if not lines:
        return
    try:
        fd = os.open(os.path.join(directory, PENDING), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)
    except OSError:
        pass


def read_pending(directory: str) -> dict:
    out: dict = {}
    try:
        with open(os.path.join(directory, PENDING), encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                name, _, n = line.rstrip("\n").rpartition("\t")
                if name and n.lstrip("-").isdigit():
                    out[name] = out.get(name, 0) + int(n)
    except OSError:
        pass
    return out


class _TunedReads:
    """Lookups of tuned entries shared by :class:`Store` and :class:`HotStore`; a subclass gives
    ``_raw(key)`` (the stored text or None) and ``incr(counter)``."""

    def get_tuned(self, digest: str) -> dict | None:
        """The entry stored under a cache-key digest, or None (missing or corrupt: a corrupt one
        bumps ``error:corrupt-entry``)."""
        raw = self._raw("tuned/" + digest)
        if raw is None:
            return None
        entry = _unseal(raw)
        if entry is None:
            self.incr("error:corrupt-entry")
        return entry

    def get_by_tu(self, tu_id: str) -> dict | None:
        """The entry last stored for a TU identity (any content), or None."""
        raw = self._raw("tu/" + tu_id)
        return _unseal(raw) if raw is not None else None


class Store(_TunedReads):
    """Tuned-pipeline entries and counters (diskcache).  Use :func:`open_store` to make one."""

    def __init__(self, cache, size_limit: int | None = None, directory: str | None = None):
        self._cache = cache
        self.directory = cache.directory if cache is not None else directory
        self._objects = None
        self._size_limit = size_limit

    # -- tuned pipelines (reads: _TunedReads) ----------------------------------------------
    def _raw(self, key: str):
        return self._cache.get(key)

    def put_tuned(self, digest: str, tu_id: str, entry: dict) -> None:
        """Store ``entry`` = ``{"pipeline": Pipeline.to_dict(), "provenance": {...}, "material":
        {...}, "source": str}`` under both indexes.  Provenance holds session id, speedup (ratio),
        CI, date, budget."""
        sealed = _seal({**entry, "key": digest, "tu_id": tu_id})
        self._cache.set("tuned/" + digest, sealed)
        self._cache.set("tu/" + tu_id, sealed)
        # A TU no session ever found a faster pipeline for needs no exact key at compile time
        # (the answer is the user's flags whatever the content): mark it, until a tuned entry.
        from .pipeline import Pipeline
        try:
            baseline = Pipeline.from_dict(entry["pipeline"]).is_baseline
        except Exception:
            baseline = False
        if not baseline:
            self._cache.set("everfaster/" + tu_id, 1)
            self._cache.delete("flagsonly/" + tu_id)
        elif self._cache.get("everfaster/" + tu_id) is None:
            self._cache.set("flagsonly/" + tu_id, 1)

    def _select(self, prefix: str, directory: str | None = None) -> list:
        """``(key, value)`` of every entry whose key starts with ``prefix``, read without writing
        (diskcache's ``get`` updates the LRU order, a write that fails on a full disk)."""
        import sqlite3
        import urllib.parse
        directory = directory or self.directory
        path = os.path.join(directory, DBNAME)
        query = "SELECT key, mode, filename, value FROM Cache WHERE raw = 1 AND key >= ? AND key < ?"
        rows = None
        # Reading a WAL database writes its -shm file; on a full or read-only disk that fails, and
        # the last resort is SQLite's immutable mode (no locks, no -shm; what is still only in the
        # -wal file is not seen: counters may lag a little).
        for uri in (None, "file:" + urllib.parse.quote(path) + "?immutable=1"):
            try:
                con = sqlite3.connect(uri, uri=True, timeout=HOT_TIMEOUT) if uri else sqlite3.connect(path, timeout=HOT_TIMEOUT)
                con.text_factory = bytes
                try:
                    rows = con.execute(query, (prefix, prefix + "\U0010ffff")).fetchall()
                finally:
                    con.close()
                break
            except sqlite3.Error as e:
                last = e
        if rows is None:
            raise StoreUnavailable(f"cache {directory} unreadable ({last})")
        out = []
        for key, mode, filename, value in rows:
            if mode in (MODE_BINARY, MODE_TEXT) and filename:
                try:
                    with open(os.path.join(directory, filename.decode()), "rb") as f:
                        value = f.read()
                except OSError:
                    continue
            if isinstance(value, bytes) and mode != MODE_BINARY:
                value = value.decode("utf-8", "replace")
            out.append((key.decode("utf-8", "surrogateescape"), value))
        return out

    def entries(self):
        """Every valid tuned entry, as dicts (for ``stats`` and ``explain``)."""
        for _k, raw in self._select("tuned/"):
            e = _unseal(raw)
            if e is not None:
                yield e

    # -- counters -------------------------------------------------------------------------
    def incr(self, counter: str, n: int = 1) -> None:
        """Atomically add ``n`` to a counter."""
        self._cache.incr("stat/" + counter, n, default=0)

    def counters(self) -> dict:
        """All counters as ``{name: int}`` (with those waiting in ``stats.pending``)."""
        out = {}
        for k, n in self._select("stat/"):
            if isinstance(n, int):
                out[k[5:]] = n
        for k, n in read_pending(self.directory).items():
            out[k] = out.get(k, 0) + n
        return out

    def zero_counters(self) -> None:
        for k in list(self._cache.iterkeys()):
            if isinstance(k, str) and k.startswith("stat/"):
                self._cache.delete(k)
        try:
            os.unlink(os.path.join(self.directory, PENDING))
        except OSError:
            pass

    # -- the object cache -----------------------------------------------------------------
    def objects(self):
        """The object cache (a diskcache.Cache in ``<cache>/objects``), opened on first use."""
        if self._objects is None:
            self._objects = _open_cache(os.path.join(self.directory, OBJECTS_DIR),
                                        self._size_limit, attempts=8)
        return self._objects

    def object_entries(self) -> int:
        """How many objects the object cache holds."""
        import sqlite3
        path = os.path.join(self.directory, OBJECTS_DIR, DBNAME)
        if not os.path.exists(path):
            return 0
        con = sqlite3.connect(path, timeout=HOT_TIMEOUT)
        try:
            return con.execute("SELECT count(*) FROM Cache WHERE key >= 'obj/' AND key < 'obj0'").fetchone()[0]
        except sqlite3.Error:
            return 0
        finally:
            con.close()

    def clear(self, stats_too: bool = True) -> int:
        """Remove tuned entries, the object cache (objects and manifests), the recorded profiles
        and (``stats_too``) the counters; returns how many keys were removed."""
        removed = 0
        for k in list(self._cache.iterkeys()):
            if isinstance(k, str) and (k.startswith(("tuned/", "tu/", "obj/", "man/", "everfaster/", "flagsonly/"))
                                       or (stats_too and k.startswith("stat/"))):
                removed += bool(self._cache.delete(k))
        if stats_too:
            try:
                os.unlink(os.path.join(self.directory, PENDING))
            except OSError:
                pass
        objs = self.objects()
        removed += len(objs)
        objs.clear()
        _remove_orphan_values(objs.directory)
        import shutil
        shutil.rmtree(os.path.join(objs.directory, "tmp"), ignore_errors=True)  # listings of killed compiles
        shutil.rmtree(os.path.join(self.directory, PROFILES_DIR), ignore_errors=True)
        try:  # sessions before this moment are history no later session goes by (session._tried_before)
            with open(os.path.join(self.directory, CLEARED), "w", encoding="utf-8") as f:
                f.write(f"{time.time()}\n")
        except OSError:
            pass
        return removed

    def volume(self) -> int:
        """Bytes used on disk (both caches)."""
        total = 0
        for d in (self.directory, os.path.join(self.directory, OBJECTS_DIR)):
            try:
                total += _DB(d, None, HOT_TIMEOUT).volume() if os.path.exists(os.path.join(d, DBNAME)) else 0
            except (StoreUnavailable, OSError, Exception):
                pass
        return total

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        if self._objects is not None:
            self._objects.close()


def open_store_readonly(directory: str | None = None) -> Store:
    """A Store for reading only (counters, entries, sizes), opened without diskcache, which writes
    its settings even to read: ``stats`` must still answer on a full or read-only disk.  Writing
    methods fail on it.  Raises StoreUnavailable when there is no readable cache there."""
    from .config import cache_dir
    directory = directory or cache_dir()
    if not os.path.isfile(os.path.join(directory, DBNAME)):
        raise StoreUnavailable(f"no cache at {directory}; check AUTOPASS_CACHE_DIR")
    return Store(None, directory=directory)


def _remove_orphan_values(directory: str) -> None:
    """Remove ``.val`` files no row names (left by a process killed between writing a value file
    and committing its row; diskcache never reads them)."""
    import sqlite3
    try:
        con = sqlite3.connect(os.path.join(directory, DBNAME), timeout=HOT_TIMEOUT)
        try:
            known = {r[0] for r in con.execute("SELECT filename FROM Cache WHERE filename IS NOT NULL")}
        finally:
            con.close()
    except sqlite3.Error:
        return
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if name.endswith(".val"):
                rel = os.path.relpath(os.path.join(root, name), directory)
                if rel not in known:
                    try:
                        os.unlink(os.path.join(root, name))
                    except OSError:
                        pass


def _quarantine(directory: str) -> bool:
    """Move a corrupt ``cache.db`` (and its -wal/-shm) aside, under an flock so that only one of
    many concurrent processes does it, and only if it is still corrupt.  True if moved."""
    import fcntl
    import sqlite3
    path = os.path.join(directory, DBNAME)
    try:
        fd = os.open(os.path.join(directory, DBNAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            con = sqlite3.connect(path, timeout=HOT_TIMEOUT)
            try:
                con.execute("SELECT count(*) FROM sqlite_master").fetchall()
                ok = con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            finally:
                con.close()
            if ok:
                return True  # someone else repaired it meanwhile
        except sqlite3.DatabaseError as e:
            if not _is_corrupt(e):
                return False
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved = False
        for suffix in ("", "-wal", "-shm"):
            try:
                os.rename(path + suffix, f"{path}.corrupt-{stamp}-{os.getpid()}{suffix}")
                moved = True
            except FileNotFoundError:
                pass
        return moved
    except OSError:
        return False
    finally:
        os.close(fd)


def _open_cache(directory: str, size_limit: int | None, attempts: int = 8, timeout: float = 5):
    """A diskcache.Cache at ``directory`` with our settings; retries "database is locked" with
    jittered exponential backoff (about 2.5 s in all), moves a corrupt database aside once, and
    raises StoreUnavailable for everything else at once."""
    import diskcache  # imported here: only the CLI, the session and first use of a cache pay for it
    delay = 0.01
    last = None
    healed = False
    # Without a size limit the one stored stays (diskcache's own default for a new cache is 1 GiB).
    limit = {"size_limit": size_limit} if size_limit else (
        {} if os.path.exists(os.path.join(directory, DBNAME)) else {"size_limit": DEFAULT_SIZE})
    for _ in range(attempts):
        try:
            os.makedirs(directory, exist_ok=True)
            return diskcache.Cache(directory, eviction_policy=EVICTION_POLICY, timeout=timeout, **limit)
        except Exception as e:  # sqlite3 errors, OSError, diskcache.Timeout
            last = e
            if _is_corrupt(e) and not healed:
                healed = True
                if _quarantine(directory):
                    continue
            if not _is_locked(e):
                break
            import random
            time.sleep(delay * (1 + random.random()))
            delay *= 2
    raise StoreUnavailable(f"cache {directory} unavailable ({type(last).__name__}: {last}); "
                           "check AUTOPASS_CACHE_DIR and its permissions or free space")


def open_store(directory: str | None = None, size_limit: int | None = None, attempts: int = 8) -> Store:
    """Open (creating if needed) the cache at ``directory`` (default ``config.cache_dir()``).

    ``size_limit`` in bytes (default 2 GiB).  Retries "database is locked" with jittered
    exponential backoff (``attempts`` tries, about 2.5 s in all), then raises StoreUnavailable."""
    from .config import cache_dir
    directory = directory or cache_dir()
    store = Store(_open_cache(directory, size_limit, attempts), size_limit)
    _ensure_reserve(directory)
    return store


# ---- the compile hot path ---------------------------------------------------------------------
def _sqlite():
    try:
        import _sqlite3 as mod  # the C module: `sqlite3` also imports datetime and adapters (~2 ms)
        mod.connect  # noqa: B018
    except (ImportError, AttributeError):  # pragma: no cover
        import sqlite3 as mod
    return mod


#: Every _DB opened by this process, for :func:`close_all`.
_OPEN: list = []


def close_all(leaving: bool = False) -> None:
    """Close every hot-path database connection of this process.  Call before ``exec`` or
    ``os._exit`` (compile-server children): SQLite checkpoints and removes the write-ahead log
    when the last connection closes, and a process that never closes leaves it growing
    (measured: a 450 KB -wal after one 8-TU build, filling a 1 MB cache disk).

    ``leaving`` (the process execs or exits next): connections a compile-server spare opened
    ahead (:func:`open_ahead`) are left to the kernel -- the other spares hold the same files
    open, so this close would not be the last one, and it cost ~0.35 ms each (measured: 0.7 ms
    of a served pass-through's 2.2 ms of Python).  Exec (SQLite opens with close-on-exec) or
    exit releases their locks and mappings; a crash at any point is something SQLite is built to
    survive, and no transaction is open here (one that is, is closed properly)."""
    close_ahead(leaving)
    while _OPEN:
        db = _OPEN.pop()
        if leaving and db.shared and not _in_transaction(db):
            continue
        db.close()


def _in_transaction(db) -> bool:
    con = getattr(db, "con", None)
    try:
        return con is not None and con.in_transaction
    except Exception:
        return True


#: Databases a compile-server spare opened before its call came (:func:`open_ahead`):
#: ``{database path: (_DB, _file_ids(path) when opened)}``.
_AHEAD: dict = {}
#: Connections opened ahead whose files changed under them: never used, and never closed (a
#: close may checkpoint the old -wal into a database file others now use); they end with the
#: process, which leaves by os._exit.
_ABANDONED: list = []


def _file_ids(path: str):
    """What tells the database ``path`` is still the one a connection opened: the database
    file's (dev, inode, size, mtime) -- SQLite changes the last two only when it checkpoints --
    and the (dev, inode) of its -wal and -shm (None when absent).  Raises OSError."""
    st = os.stat(path)
    out = [(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)]
    for suffix in ("-wal", "-shm"):
        try:
            st = os.stat(path + suffix)
            out.append((st.st_dev, st.st_ino))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def _same_inodes(path: str, ids) -> bool:
    """The database ``path`` and its -wal and -shm are still the files of ``ids``
    (:func:`_file_ids`), their size and mtime aside: what SQLite's own checkpoints change."""
    try:
        now = _file_ids(path)
    except OSError:
        return False
    return now[0][:2] == ids[0][:2] and now[1:] == ids[1:]


def _abandon(db: "_DB") -> None:
    if db in _OPEN:
        _OPEN.remove(db)
    _ABANDONED.append(db)


def open_ahead(directory: str) -> bool:
    """In a compile-server spare (server.py), before any call: open the hot-path databases of the
    cache ``directory`` (the main one and ``objects/``), so that a call using this cache does not
    open them itself.  Measured here: opening the two took ~1.5 ms of a served call, and the last
    connection's close checkpoints and deletes SQLite's -wal/-shm, which the next call re-creates
    (~1.3 ms more); spares holding connections keep both alive between calls.

    Only a cache that opens cleanly is opened ahead: missing, incomplete, corrupt or locked means
    nothing is (nothing is created, moved aside or counted here); each call then opens its own as
    it always did.  Returns True when both are open.  Never raises."""
    opened = []
    for d in (directory, os.path.join(directory, OBJECTS_DIR)):
        path = os.path.join(d, DBNAME)
        if path in _AHEAD:
            continue
        try:
            if not os.path.exists(path):
                raise FileNotFoundError(path)
            db = _DB(d, None, HOT_TIMEOUT, ahead=True)
            db.shared = True
            ids = _file_ids(path)  # after the first read: SQLite has opened (or made) -wal and -shm
        except Exception:
            for p in opened:
                _AHEAD.pop(p, (None,))[0].close()
            return False
        _AHEAD[path] = (db, ids)
        opened.append(path)
    return True


def _same_files(path: str, ids) -> bool:
    try:
        return _file_ids(path) == ids
    except OSError:
        return False


def close_ahead(leaving: bool = False) -> None:
    """Close the databases :func:`open_ahead` opened and no call took (a spare switching to
    another cache, or ending; ``leaving``: see :func:`close_all`)."""
    while _AHEAD:
        path, (db, ids) = _AHEAD.popitem()
        if not leaving or _in_transaction(db):
            _let_go(path, db, ids)


def _let_go(path: str, db: "_DB", ids) -> None:
    """Close a database opened ahead -- or, when its files are other files now, abandon it.  (A
    database whose size or mtime changed but whose files are the same was checkpointed by SQLite
    in another process: closing it is an ordinary close.)"""
    if _same_inodes(path, ids):
        db.close()
    else:
        _abandon(db)


#: How many databases :func:`park` keeps open between two calls (two caches: main + objects each).
PARK_MAX = 4


def park() -> bool:
    """In a compile-server worker that serves several calls (server.py), after a call: keep the
    hot-path databases the call opened for the next one, as if opened ahead (:func:`open_ahead`:
    the next call takes them when the files are still the same), and close the rest.  Measured
    here: re-opening the two databases cost ~1.3 ms of CPU per call, the forked process that did
    it ~2 ms more.  Returns False when a connection had to be abandoned (its files were replaced
    under it: the process should end, which releases it).  Never raises."""
    keep = []
    while _OPEN:
        db = _OPEN.pop()
        if getattr(db, "con", None) is None:
            continue
        path = os.path.join(db.directory, DBNAME)
        if _AHEAD.get(path, (None,))[0] is db:  # opened ahead, and the call did not take it
            keep.append(db)
            continue
        if db.timeout != HOT_TIMEOUT or _in_transaction(db) or path in _AHEAD or len(_AHEAD) >= PARK_MAX:
            db.close()
            continue
        try:
            _AHEAD[path] = (db, _file_ids(path))
            db.shared = True
            keep.append(db)
        except OSError:
            _abandon(db)
    _OPEN.extend(keep)
    return not _ABANDONED


def _open_db(directory: str, size_limit: int | None, timeout: float) -> "_DB":
    """The database of ``directory``: the one opened ahead when its files are still the same
    (:func:`_file_ids`), readable and writable as before, opened with the same busy timeout, and
    its settings (re-read now) fit ``size_limit``; else a fresh :class:`_DB`."""
    path = os.path.join(directory, DBNAME)
    got = _AHEAD.pop(path, None)
    if got is not None:
        db, ids = got
        try:
            if timeout == HOT_TIMEOUT and _same_files(path, ids) and os.access(path, os.R_OK | os.W_OK) \
                    and os.access(directory, os.W_OK) and db.reread(size_limit):
                return db
            _let_go(path, db, ids)
        except db.errors:
            _abandon(db)
    return _DB(directory, size_limit, timeout)


class _DB:
    """One diskcache database opened with the sqlite3 C module (see the module docstring).
    ``ahead``: for :func:`open_ahead`, raise StoreUnavailable instead of creating, completing or
    moving aside a database."""

    #: Opened ahead by a compile-server spare (other spares hold the same files): see close_all.
    shared = False

    def __init__(self, directory: str, size_limit: int | None, timeout: float, ahead: bool = False):
        _OPEN.append(self)
        self.directory = directory
        self.timeout = timeout
        self.wanted_size = size_limit
        self.healed = False
        sqlite = _sqlite()
        self.errors = (sqlite.Error, OSError)
        path = os.path.join(directory, DBNAME)
        settings = None
        if os.path.exists(path):
            settings = self._connect(sqlite, path, timeout, heal=not ahead)
        if ahead and not (settings is not None and self._usable(settings) and self._complete()):
            self.close()
            raise StoreUnavailable(f"cache {directory} not ready to be opened ahead")
        for _ in range(4):
            if settings is not None and self._usable(settings) and self._complete():
                break
            # Create the cache, or put our settings in, or finish a cache another process is still
            # creating, through diskcache's own constructor (idempotent: CREATE ... IF NOT EXISTS).
            if getattr(self, "con", None) is not None:
                self.con.close()
            _open_cache(directory, size_limit, attempts=8, timeout=timeout).close()
            settings = self._connect(sqlite, path, timeout)
        else:
            raise StoreUnavailable(f"cache {directory} is incomplete after creating it; "
                                   "remove it (autopass-cc cache clear) if this persists")
        self._settle(settings)
        self.touched: set = set()

    def _settle(self, settings: dict) -> None:
        self.size_limit = int(settings.get("size_limit") or DEFAULT_SIZE)
        self.min_file_size = int(settings.get("disk_min_file_size", 2 ** 15))
        self.cull_limit = int(settings.get("cull_limit", 10))

    def _settings(self) -> dict:
        rows = self.con.execute("SELECT key, value FROM Settings").fetchall()
        return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in rows}

    def reread(self, size_limit: int | None) -> bool:
        """For a database opened ahead, when a call takes it: read the settings again (another
        process may have changed them since); True when they are still usable with ``size_limit``.
        Raises sqlite3 errors."""
        self.wanted_size = size_limit
        settings = self._settings()
        if not self._usable(settings):
            return False
        self._settle(settings)
        self.touched.clear()
        return True

    def _connect(self, sqlite, path: str, timeout: float, heal: bool = True):
        """Connect and read the Settings table; None when it is missing.  A database that is not
        one is moved aside (and None returned: the caller re-creates it); with ``heal`` False,
        StoreUnavailable is raised instead."""
        try:
            self.con = sqlite.connect(path, timeout=timeout, isolation_level=None)
            self.con.text_factory = bytes  # a damaged TEXT value must read as bytes, not raise
            self.con.execute("PRAGMA synchronous = 1")   # diskcache's sqlite_synchronous: NORMAL
            return self._settings()
        except sqlite.Error as e:
            if not heal:
                self.close()
                raise StoreUnavailable(f"cache {self.directory}: {e}") from None
            if _is_corrupt(e):
                self.con.close()
                self.con = None
                self.healed = _quarantine(self.directory) or self.healed
                return None
            if _is_locked(e):
                raise StoreUnavailable(f"cache {self.directory} is locked by another process ({e})") from None
            if "no such table" in str(e):
                return None
            raise StoreUnavailable(f"cache {self.directory} unavailable ({e}); check AUTOPASS_CACHE_DIR, "
                                   "its permissions and free space") from None

    #: What diskcache 5.x's constructor creates, in this order (Settings and its rows first, the
    #: triggers last; not in one transaction).  Another process may open the file half-built.
    SCHEMA_OBJECTS = frozenset({"Settings", "Cache", "Settings_count_insert", "Settings_count_delete",
                                "Settings_size_insert", "Settings_size_update", "Settings_size_delete"})

    def _complete(self) -> bool:
        """True when every table and trigger diskcache creates exists; a cache another process is
        still creating is not, and goes through diskcache's own (idempotent) constructor."""
        try:
            rows = self.con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')").fetchall()
        except self.errors:
            return False
        names = {r[0].decode() if isinstance(r[0], bytes) else r[0] for r in rows}
        return self.SCHEMA_OBJECTS <= names

    def _usable(self, s: dict) -> bool:
        return (s.get("eviction_policy") == EVICTION_POLICY and s.get("statistics") == 0 and "size" in s
                and "count" in s and (not self.wanted_size or s.get("size_limit") == self.wanted_size))

    # -- reads ------------------------------------------------------------------------------
    def get(self, key: str):
        """The value stored under ``key`` (bytes, str or int), or None; marks it used (LRU)."""
        row = self.con.execute("SELECT rowid, mode, filename, value FROM Cache WHERE key = ? AND raw = 1",
                               (key,)).fetchone()
        if row is None:
            return None
        rowid, mode, filename, value = row
        if mode == MODE_RAW:
            out = value.decode("utf-8", "replace") if isinstance(value, bytes) and key.startswith(("tuned/", "tu/")) else value
        elif mode in (MODE_BINARY, MODE_TEXT) and filename:
            if isinstance(filename, bytes):
                filename = filename.decode("utf-8", "surrogateescape")
            try:
                with open(os.path.join(self.directory, filename), "rb") as f:
                    out = f.read()
            except OSError:
                return None
            if mode == MODE_TEXT:
                out = out.decode("utf-8")
        else:
            return None  # a pickled value: not ours
        self.touched.add(rowid)
        return out

    def has(self, key: str) -> bool:
        return self.con.execute("SELECT 1 FROM Cache WHERE key = ? AND raw = 1", (key,)).fetchone() is not None

    # -- writes -----------------------------------------------------------------------------
    def _write(self, body):
        """Run ``body()`` in one ``BEGIN IMMEDIATE ... COMMIT`` and return what it returns; on any
        failure roll back (a failing rollback is ignored) and re-raise."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            out = body()
            self.con.execute("COMMIT")
        except BaseException:
            try:
                self.con.execute("ROLLBACK")
            except self.errors:
                pass
            raise
        return out

    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` as diskcache's ``Cache.set(key, value)`` does (bytes: inline below
        ``disk_min_file_size``, else a value file written completely before its row is
        committed); evicts least-recently-used entries beyond the size limit."""
        self.put_many([(key, value)])

    def put_many(self, items) -> None:
        """:meth:`put` of each ``(key, value)`` of ``items``, in one transaction (one commit, one
        eviction check).  Raises sqlite3/OS errors; nothing is stored then."""
        now = time.time()
        rows, files = [], []
        try:
            for key, value in items:
                filename, size, mode, db_value = None, 0, MODE_RAW, value
                if len(value) >= self.min_file_size:
                    name = os.urandom(16).hex()
                    sub = os.path.join(name[:2], name[2:4])
                    filename = os.path.join(sub, name[4:] + ".val")
                    os.makedirs(os.path.join(self.directory, sub), exist_ok=True)
                    files.append(filename)
                    with open(os.path.join(self.directory, filename), "xb") as f:
                        f.write(value)
                    size, mode, db_value = len(value), MODE_BINARY, None
                rows.append((key, filename, size, mode, db_value))
        except BaseException:
            for name in files:
                self._remove(name)
            raise

        def upsert() -> list:
            cleanup = []
            for key, filename, size, mode, db_value in rows:
                row = self.con.execute("SELECT rowid, filename FROM Cache WHERE key = ? AND raw = 1", (key,)).fetchone()
                if row:
                    cleanup.append(row[1])
                    self.con.execute(
                        "UPDATE Cache SET store_time = ?, expire_time = NULL, access_time = ?, access_count = 0,"
                        " tag = NULL, size = ?, mode = ?, filename = ?, value = ? WHERE rowid = ?",
                        (now, now, size, mode, filename, db_value, row[0]))
                else:
                    self.con.execute(
                        "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, tag, size,"
                        " mode, filename, value) VALUES (?, 1, ?, NULL, ?, 0, NULL, ?, ?, ?, ?)",
                        (key, now, now, size, mode, filename, db_value))
            return cleanup + self._cull()
        try:
            cleanup = self._write(upsert)
        except BaseException:
            for name in files:
                self._remove(name)  # value files of rows that were never committed
            raise
        for name in cleanup:
            self._remove(name)

    def get_many_inline(self, keys: list) -> dict:
        """``{key: value}`` for those of ``keys`` stored inline (small values), in one query;
        not marked used (their LRU order is left alone).  Raises sqlite3 errors."""
        out = {}
        for i in range(0, len(keys), 500):  # (SQLite's bound-parameter limit)
            chunk = keys[i:i + 500]
            q = "SELECT key, value FROM Cache WHERE raw = 1 AND mode = 1 AND key IN (%s)" % ",".join("?" * len(chunk))
            for k, v in self.con.execute(q, chunk):
                out[k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k] = v
        return out

    def delete(self, key: str) -> None:
        def remove_row():
            row = self.con.execute("SELECT rowid, filename FROM Cache WHERE key = ? AND raw = 1", (key,)).fetchone()
            if row:
                self.con.execute("DELETE FROM Cache WHERE rowid = ?", (row[0],))
            return row
        row = self._write(remove_row)
        if row:
            self._remove(row[1])

    def volume(self) -> int:
        (page_count,), = self.con.execute("PRAGMA page_count").fetchall()
        (page_size,), = self.con.execute("PRAGMA page_size").fetchall()
        (size,), = self.con.execute("SELECT value FROM Settings WHERE key = 'size'").fetchall()
        return page_count * page_size + size

    def _cull(self) -> list:
        """diskcache's ``_cull`` for the least-recently-used policy (inside a transaction)."""
        if self.volume() < self.size_limit:
            return []
        rows = self.con.execute("SELECT filename FROM Cache ORDER BY access_time LIMIT ?", (self.cull_limit,)).fetchall()
        self.con.execute("DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM Cache ORDER BY access_time LIMIT ?)",
                         (self.cull_limit,))
        return [r[0] for r in rows]

    def _remove(self, filename) -> None:
        if filename:
            if isinstance(filename, bytes):
                filename = filename.decode("utf-8", "surrogateescape")
            try:
                os.unlink(os.path.join(self.directory, filename))
            except OSError:
                pass

    def flush(self, counters: dict | None = None) -> None:
        """One transaction: add ``counters`` (``{"stat/...": n}``, as diskcache's ``incr``) and
        record the reads of this process (access_time, the LRU order)."""
        if not counters and not self.touched:
            return
        now = time.time()

        def add():
            for key, n in (counters or {}).items():
                cur = self.con.execute("UPDATE Cache SET value = value + ?, store_time = ?, access_time = ?"
                                       " WHERE key = ? AND raw = 1 AND mode = 1", (n, now, now, key))
                if cur.rowcount == 0:
                    self.con.execute(
                        "INSERT INTO Cache(key, raw, store_time, expire_time, access_time, access_count, tag,"
                        " size, mode, filename, value) VALUES (?, 1, ?, NULL, ?, 0, NULL, 0, 1, NULL, ?)",
                        (key, now, now, n))
            if self.touched:
                self.con.execute("UPDATE Cache SET access_time = ? WHERE rowid IN (%s)"
                                 % ",".join(str(int(r)) for r in self.touched), (now,))
        self._write(add)
        self.touched.clear()

    def close(self) -> None:
        con, self.con = getattr(self, "con", None), None
        if con is None:
            return
        try:
            con.close()
        except self.errors:
            pass


class HotStore(_TunedReads):
    """What one compile needs from the caches, without diskcache (see the module docstring):
    tuned-entry lookups, counters (batched: :meth:`flush` writes them in one transaction at the
    end of the compile), and the object cache's raw entries.

    Raises StoreUnavailable (opening) and sqlite3/OS errors (later); the wrapper turns each into
    one ``autopass-cc:`` line and the user's own compile."""

    def __init__(self, directory: str | None = None, size_limit: int | None = None, timeout: float = HOT_TIMEOUT):
        from .config import cache_dir
        self.directory = directory or cache_dir()
        self.size_limit = size_limit
        self.timeout = timeout
        self._objects = None
        self.pending: dict = {}
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            raise StoreUnavailable(f"cache {self.directory} unavailable ({type(e).__name__}: {e}); check "
                                   "AUTOPASS_CACHE_DIR and its permissions or free space") from None
        fresh = not os.path.exists(os.path.join(self.directory, DBNAME))
        try:
            self.main = _open_db(self.directory, size_limit, timeout)
        except StoreUnavailable as e:
            if error_kind(e) != "cache-full" or not release_reserve(self.directory):
                raise
            self.main = _DB(self.directory, size_limit, timeout)  # room for SQLite's -wal/-shm now
            self.incr("error:cache-full")
        if self.main.healed:
            self.incr("error:corrupt-cache")
        if fresh:
            _ensure_reserve(self.directory)

    @property
    def errors(self):
        return self.main.errors

    def objects(self) -> _DB:
        if self._objects is None:
            self._objects = _open_db(os.path.join(self.directory, OBJECTS_DIR), self.size_limit, self.timeout)
            if self._objects.healed:
                self.incr("error:corrupt-cache")
        return self._objects

    # -- tuned entries (same answers as Store) ------------------------------------------------
    def has_tu(self, tu_id: str) -> bool:
        return self.main.has("tu/" + tu_id)

    def flags_only(self, tu_id: str) -> bool:
        """True when every entry ever stored for this TU identity keeps the user's flags (Store.put_tuned)."""
        return self.main.has("flagsonly/" + tu_id)

    def _raw(self, key: str):
        return self.main.get(key)

    # -- counters ---------------------------------------------------------------------------
    def incr(self, counter: str, n: int = 1) -> None:
        self.pending["stat/" + counter] = self.pending.get("stat/" + counter, 0) + n

    def flush(self) -> None:
        """Write pending counters and LRU marks.  Raises on failure (pending counters are kept,
        so a caller may retry)."""
        if self._objects is not None and self._objects.touched:
            try:
                self._objects.flush()
            except self.errors:
                pass  # only the LRU order of a few entries is lost
        if self.pending or self.main.touched:
            self.main.flush(self.pending)
            self.pending = {}

    def close(self) -> None:
        self.main.close()
        if self._objects is not None:
            self._objects.close()
