"""The object cache: a warm rebuild restores each TU's object instead of running clang (like ccache).

What is cached for one compile: the object file, the dependency file (when the compile writes
one), clang's stdout and stderr -- only for exit code 0 (failures are never cached).  The design
follows ccache's manual, sections "How ccache works" (the direct mode and the depend mode) and
"Cache statistics":

Keys (cachekey.py computes them)
  * direct key = compiler identity (version, SHA-256 of the binary, target) + driver mode +
    effective working directory + the arguments as given, with the ``-o``/``-MF`` paths masked +
    the object path as written when a dependency file is written (it is the file's default
    target) + CPATH & co. (ccache hashes the same environment variables) + what ``-march=native``
    means on this host + the contents of files named by ``-fprofile-use=`` & co. + the source
    file's contents.  No preprocessor run.  It names a *manifest*.
  * manifest = up to :data:`MAX_RECORDS` records, newest first; each lists the files one compile
    read (path as clang named it, size, mtime_ns, ctime_ns, inode, BLAKE2b of the contents) and
    the resulting *content key*, plus the exact tuned-pipeline key (cachekey.compute) when that
    compile computed one.
  * content key = direct key + every file read and its contents hash (ccache's depend mode: "the
    hash ... based on the direct mode hash ... plus information about include files").
  * object key = content key + the Pipeline actually used (its digest, ``"baseline"`` for the
    user's own flags).  A new tuned pipeline for a TU therefore never serves an old object.

Lookup (no preprocessor): direct key -> manifest -> the first record whose files all match ->
object key -> entry.  A file matches when its size, mtime_ns, ctime_ns and inode are the ones
recorded (ccache's ``file_stat_matches`` with ``_ctime``, safe here because a recorded file is never
"too new", below) or, failing that, when its contents hash is the recorded one.

Which files a compile read: clang itself lists them while it compiles, through two cc1 options
that change neither the object nor the user's dependency file (tests/integration check the bytes):
``-dependency-dot FILE`` (every ``#include``-d file, system headers too, also under ``-MMD``) and,
when ``-include``/``-imacros`` are given, ``-header-include-file FILE`` (forced includes come from
clang's predefines buffer, which the dot graph leaves out).  No preprocessor run on a miss either,
so a cold build costs little more than the compile (ccache's depend mode, with the depfile it
would need from the user replaced by these).  ``-dependency-dot`` drops the leading ``/`` of
absolute paths (it strips the sysroot, "/"): a name is resolved against the working directory
and against ``/``, and a compile whose names are ambiguous, unreadable or escaped is not cached.

Not cached (the compile runs as usual; ccache's manual has the same rules):
  * the source or any file it read contains ``__DATE__``, ``__TIME__`` or ``__TIMESTAMP__``
    (ccache: "the string ``__TIME__`` is present in the source code" disables the direct mode),
    ``.incbin`` (ccache refuses it too) or ``#embed``/``__has_embed`` (files read that clang does
    not list);
  * a file read is "too new": modified (mtime or ctime) less than :data:`TOO_NEW_NS` (2 s where
    timestamps are whole seconds) before the compile started -- it may be changing while we
    read it (ccache's ``include_file_mtime`` and ``include_file_ctime`` checks);
  * options writing other files or recording the command line (cachekey.OBJECT_CACHE_REFUSED);
    an output or dependency-file path that exists and is not a regular file; a dependency file
    that clang did not write where it is predicted;
  * ``AUTOPASS_OBJECT_CACHE=0`` (config ``object_cache = false``).
Known limit, shared with ccache's direct mode: a header created *after* a compile in a directory
searched before the one where its namesake was found is not seen (a manifest lists the files read,
not the ones that were looked for and missing).

Entries are checksummed (BLAKE2b over every byte); a corrupt or truncated entry is a miss, counted
``error:corrupt-object`` and deleted, never a bad object.  Restoring writes each file to a
temporary file in the destination directory (created with mode 0666 & ~umask, as clang creates
its outputs) and renames it into place, so a reader sees the old file or the whole new one.
Diagnostics are replayed byte for byte: clang's stderr is captured through a pseudo-terminal when
ours is a terminal (so colours and layout are clang's own), and an entry with diagnostics captured
for a terminal is only replayed to a terminal of the same kind (else it is a miss).
"""

from __future__ import annotations

import marshal
import os

#: Records kept per manifest (ccache keeps many more; a TU rarely alternates between more
#: versions of its headers than this).
MAX_RECORDS = 8
#: A file modified less than this before the compile started is "too new" to be recorded (the
#: kernel's file timestamps come from a clock that may lag the one we read by a tick).
TOO_NEW_NS = 20_000_000
#: The same on a file system that keeps whole seconds (both times' nanoseconds 0: e.g. some
#: network file systems): two writes within one second share their timestamps there.
COARSE_TOO_NEW_NS = 2_000_000_000


def too_new(st, start_ns: int) -> bool:
    """True when a file with stat result ``st`` was modified too recently before ``start_ns`` to
    be recognised later by its stat data (TOO_NEW_NS; COARSE_TOO_NEW_NS for whole-second times)."""
    coarse = st.st_mtime_ns % 1_000_000_000 == 0 and st.st_ctime_ns % 1_000_000_000 == 0
    limit = start_ns - (COARSE_TOO_NEW_NS if coarse else TOO_NEW_NS)
    return st.st_mtime_ns >= limit or st.st_ctime_ns >= limit
ENTRY_MAGIC = b"APCCOBJ1"
MANIFEST_MAGIC = b"APCCMAN1"
_TEMPORAL = (b"__DATE__", b"__TIME__", b"__TIMESTAMP__", b".incbin")


def _blake():
    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover
        from hashlib import blake2b
    return blake2b


def digest(data: bytes) -> str:
    return _blake()(data, digest_size=20).hexdigest()


def uncacheable_text(data: bytes) -> str | None:
    """Why a file with these contents cannot be in the object cache, or None."""
    for word in _TEMPORAL:
        if word in data:
            return "uses " + word.decode()
    if b"embed" in data:
        i = data.find(b"embed")
        while i >= 0:
            j = i - 1
            while j >= 0 and data[j] in b" \t":
                j -= 1
            if (j >= 0 and data[j:j + 1] == b"#") or data[max(0, i - 6):i] == b"__has_":
                return "uses #embed"
            i = data.find(b"embed", i + 1)
    return None


def read_source(path: str) -> tuple[str | None, str | None]:
    """``(digest, None)`` for the source file, or ``(None, reason)`` when the object cache cannot
    be used for it (unreadable, temporal macros ...)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, f"source unreadable ({e.strerror})"
    why = uncacheable_text(data)
    if why:
        return None, why
    return digest(data), None


# ---- which files a compile read ----------------------------------------------------------------
#: Reasons whose text goes on with a path or a name (dropped for the counter's label).
_REASON_PREFIXES = ("input too new", "unreadable input", "ambiguous file name", "source unreadable")


def reason_label(why: str) -> str:
    """A reason a compile cannot be cached (this module's, cachekey.object_cache_refusal's) as a
    counter label: the same for every file, e.g. ``"input too new /src/gen.h"`` -> ``"input too
    new"``, ``"option -MJ"`` kept as it is."""
    for prefix in _REASON_PREFIXES:
        if why.startswith(prefix):
            return prefix
    return why


def listing_args(base: str, forced_includes: bool) -> list[str]:
    """Arguments that make clang list the files it reads (see the module docstring); ``base`` is
    a private temporary path prefix."""
    out = ["-Xclang", "-dependency-dot", "-Xclang", base + ".dot"]
    if forced_includes:
        out += ["-Xclang", "-header-include-file", "-Xclang", base + ".hdr"]
    return out


def new_listing(objects_dir: str, inv) -> tuple[str, list[str]]:
    """A private temporary path prefix under ``<objects_dir>/tmp`` for the list of files one
    compile reads, and the arguments that make clang write it there: ``(base, args)``.  Raises
    OSError when that directory cannot be made."""
    tmp = os.path.join(objects_dir, "tmp")
    os.makedirs(tmp, exist_ok=True)
    base = os.path.join(tmp, f"{os.getpid()}-{os.urandom(4).hex()}")
    return base, listing_args(base, bool(forced_includes(inv)))


def remove_listing(base: str) -> None:
    """Remove what the arguments of :func:`new_listing` made clang write (if it did)."""
    for ext in (".dot", ".hdr"):
        try:
            os.unlink(base + ext)
        except OSError:
            pass


def forced_includes(inv) -> list[str]:
    """The ``-include``/``-imacros`` files of a compile, as written."""
    out, args = [], list(inv.args)
    for i, a in enumerate(args):
        if a in ("-include", "-imacros") and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith("-include") and len(a) > 8 and not a.startswith("-include-pch"):
            out.append(a[8:])
        elif a.startswith("-imacros") and len(a) > 8:
            out.append(a[8:])
    return out


def _resolve(label: str, tops: dict) -> str | None:
    """A path as ``-dependency-dot`` printed it (an absolute one without its leading ``/``) -> the
    path to read (None: ambiguous/missing).  ``tops`` caches, per first path component, whether
    it exists relative to the current directory and under ``/``: where only one does, the label
    can only name that path (whose existence :func:`scan` checks as it reads), which saves two
    stat calls per file (vm.c's 85: 0.57 -> 0.2 ms of the background store)."""
    if label.startswith(("./", "../")):
        return label if os.path.exists(label) else None
    top = label.split("/", 1)[0]
    known = tops.get(top)
    if known is None:
        known = tops[top] = (os.path.exists(top), os.path.exists("/" + top))
    if not known[0]:
        return "/" + label
    if not known[1]:
        return label
    rel_ok, abs_ok = os.path.exists(label), os.path.exists("/" + label)
    if rel_ok and abs_ok:
        try:
            if os.path.samefile(label, "/" + label):
                return label
        except OSError:
            pass
        return None
    return label if rel_ok else ("/" + label if abs_ok else None)


def read_listing(base: str, inv) -> tuple[list[str] | None, str | None]:
    """The files a compile read (resolved paths, in first-seen order, the source included), from
    the listing files clang wrote at ``base``; ``(None, reason)`` when they are not usable."""
    try:
        with open(base + ".dot", "rb") as f:
            dot = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None, "no include listing"
    paths, seen, tops = [], set(), {}
    for line in dot.splitlines():
        i = line.find(' label="')
        if i < 0 or not line.endswith('"];'):
            continue
        label = line[i + 8:-3]
        if "\\" in label or '"' in label:
            return None, "unusual file name"
        path = _resolve(label, tops)
        if path is None:
            return None, "ambiguous file name " + label
        if path not in seen:
            seen.add(path)
            paths.append(path)
    forced = forced_includes(inv)
    if forced:
        try:
            with open(base + ".hdr", "rb") as f:
                hdr = f.read().decode("utf-8", "surrogateescape").splitlines()
        except OSError:
            hdr = []
        for name in hdr:
            if name and name not in seen:
                if not os.path.exists(name):
                    return None, "unreadable forced include"
                seen.add(name)
                paths.append(name)
        for want in forced:
            w = os.path.normpath(want)
            if not any(os.path.normpath(p) == w or os.path.normpath(p).endswith(os.sep + w) for p in paths):
                return None, "forced include not listed"  # e.g. -include of a system header with -MMD
    if inv.source not in seen:
        paths.insert(0, inv.source)  # read twice at worst when the listing names it otherwise
    return paths, None


def inode_key(st) -> str:
    """The digest cache's key of a file with stat result ``st``: device, inode, size, mtime and
    ctime in ns -- the key of ccache's inode cache (its manual, "inode_cache").  A file's digest
    is learnt only when it is not "too new" (:data:`TOO_NEW_NS`), so any later write gives it
    another ctime, hence another key."""
    return f"dig/{st.st_dev:x}:{st.st_ino:x}:{st.st_size:x}:{st.st_mtime_ns:x}:{st.st_ctime_ns:x}"


#: Header digests by inode_key, learnt in this process (a compile-server worker serves many
#: compiles, most of which read the same system headers): as valid as the digest cache's own
#: entries, since any change to a file gives it another key.  Saves the digest query of a miss
#: (~0.2 ms for vm.c's 85 files).  At most _DIGESTS_MAX entries (cleared when full).
_DIGESTS: dict[str, bytes] = {}
_DIGESTS_MAX = 50_000


def _remember_digests(pairs) -> None:
    if len(_DIGESTS) > _DIGESTS_MAX:
        _DIGESTS.clear()
    for k, v in pairs:
        if isinstance(v, bytes) and len(v) == 40:
            _DIGESTS[k] = v


def scan(paths: list[str], start_ns: int, lookup=None, learnt: list | None = None) -> tuple[list | None, str | None]:
    """Read each file: ``[(path, size, mtime_ns, ctime_ns, ino, digest)]``, or ``(None, reason)``
    when one is unreadable, too new, or uncacheable (module docstring).

    The digest cache: ``lookup(keys)`` -> ``{inode_key: digest}`` gives the digests already known
    for files with those stat data (store._DB.get_many_inline); such a file is not read again
    (measured: 85 headers of interp-cmake's vm.c, 321 KB, 2.1 ms to read, hash and check).
    ``learnt`` receives ``(inode_key, digest)`` for each file read here.  Digests this process
    has looked up or computed before are not looked up again (:data:`_DIGESTS`)."""
    out = []
    known: dict = {}
    if lookup is not None:
        stats, keys = {}, {}
        for path in paths:
            try:
                st = stats[path] = os.stat(path)
            except OSError:
                return None, "unreadable input " + path
            keys[path] = key = inode_key(st)
            if key in _DIGESTS:
                known[key] = _DIGESTS[key]
        rest = [k for k in keys.values() if k not in known]
        if rest:
            try:
                got = lookup(rest) or {}
            except Exception:
                got = {}
            known.update(got)
            _remember_digests(got.items())
    for path in paths:
        if known:
            st = stats[path]
            dig = known.get(keys[path])
            if isinstance(dig, bytes) and len(dig) == 40 and not too_new(st, start_ns):
                out.append((path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, dig.decode("ascii")))
                continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None, "unreadable input " + path
        try:
            chunks = []
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                chunks.append(b)
            st = os.fstat(fd)  # after reading: a change while we read shows in the times
        finally:
            os.close(fd)
        if too_new(st, start_ns):
            return None, "input too new " + path
        data = b"".join(chunks)
        why = uncacheable_text(data)
        if why:
            return None, why
        dig = digest(data)
        out.append((path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, dig))
        _remember_digests([(inode_key(st), dig.encode("ascii"))])
        if learnt is not None:
            learnt.append((inode_key(st), dig))
    return out, None


# ---- manifests ------------------------------------------------------------------------------
def pack_manifest(records: list) -> bytes:
    body = marshal.dumps([dict(r) for r in records[:MAX_RECORDS]])
    return MANIFEST_MAGIC + bytes.fromhex(digest(body)) + body


def unpack_manifest(blob) -> list | None:
    """The records of a manifest, or None when it does not check out."""
    if not isinstance(blob, bytes) or not blob.startswith(MANIFEST_MAGIC) or len(blob) < 28:
        return None
    body = blob[28:]
    if blob[8:28] != bytes.fromhex(digest(body)):
        return None
    try:
        records = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "files" in r and "content" in r
                                                  for r in records):
        return None
    return records


def match(records: list) -> tuple[dict | None, bool]:
    """The first record whose files all match (module docstring) and whether any matched by
    contents only (the record's stat data is then worth refreshing)."""
    for rec in records:
        ok, refreshed = True, False
        for path, size, mtime, ctime, ino, dig in rec["files"]:
            try:
                st = os.stat(path)
            except OSError:
                ok = False
                break
            if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == (size, mtime, ctime, ino):
                continue
            if st.st_size != size:
                ok = False
                break
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                ok = False
                break
            if digest(data) != dig:
                ok = False
                break
            refreshed = True
        if ok:
            return rec, refreshed
    return None, False


def refresh(rec: dict, start_ns: int) -> dict | None:
    """``rec`` with each file's current stat data (contents already verified equal), or None when
    one is now too new to be trusted by stat alone."""
    files = []
    for path, size, _m, _c, _i, dig in rec["files"]:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if too_new(st, start_ns):
            return None
        files.append((path, size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, dig))
    return {**rec, "files": files}


# ---- entries --------------------------------------------------------------------------------
def pack_entry(obj: bytes, dep: bytes | None, out: bytes, err: bytes, tty, pipeline_id: str) -> bytes:
    """An entry: magic, header (marshal: sizes, tty state, pipeline, BLAKE2b of the payload),
    payload (object, depfile, stdout, stderr)."""
    payload = obj + (dep or b"") + out + err
    header = marshal.dumps({"sizes": (len(obj), -1 if dep is None else len(dep), len(out), len(err)),
                            "tty": tty, "pipeline": pipeline_id, "digest": digest(payload)})
    return ENTRY_MAGIC + len(header).to_bytes(4, "little") + header + payload


def unpack_entry(blob) -> tuple | None:
    """``(obj, dep|None, stdout, stderr, tty, pipeline_id)``, or None when the entry does not check
    out (truncated, garbage, wrong sizes or checksum)."""
    try:
        if not isinstance(blob, bytes) or not blob.startswith(ENTRY_MAGIC):
            return None
        n = int.from_bytes(blob[8:12], "little")
        header = marshal.loads(blob[12:12 + n])
        payload = blob[12 + n:]
        so, sd, sout, serr = header["sizes"]
        if min(so, sout, serr) < 0 or len(payload) != so + max(sd, 0) + sout + serr:
            return None
        if digest(payload) != header["digest"]:
            return None
    except (ValueError, EOFError, TypeError, KeyError, IndexError):
        return None
    obj = payload[:so]
    p = so
    dep = None
    if sd >= 0:
        dep, p = payload[p:p + sd], p + sd
    out = payload[p:p + sout]
    err = payload[p + sout:]
    return obj, dep, out, err, header.get("tty"), header.get("pipeline")


# ---- the user's files -------------------------------------------------------------------------
def depfile_path(inv) -> str | None:
    """Where clang writes the dependency file of this compile (None: it writes none): the last
    ``-MF``, else the object path with its extension replaced by ``.d`` (clang's driver,
    getDependencyFileName), else the source's stem + ``.d``."""
    from .cachekey import deps_on
    if not deps_on(inv):
        return None
    mf = None
    args = list(inv.dep_args)
    for i, a in enumerate(args):
        if a == "-MF" and i + 1 < len(args):
            mf = args[i + 1]
        elif a.startswith("-MF") and len(a) > 3:
            mf = a[3:]
    if mf is not None:
        return mf
    if any(a in ("-o", "--output") or a.startswith(("-o", "--output=")) for a in inv.args):
        p = inv.output  # llvm::sys::path::replace_extension(p, "d")
        dot = p.rfind(".")
        if dot >= p.rfind("/") + 1:
            p = p[:dot]
        return p + ".d"
    name = os.path.basename(inv.source)  # llvm::sys::path::stem
    dot = name.rfind(".")
    return (name[:dot] if dot >= 0 and name not in (".", "..") else name) + ".d"


def writable_target(path: str) -> bool:
    """True when ``path`` does not exist or is a regular file (restoring renames over it)."""
    import stat
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def restore(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it (mode 0666 & ~umask, as a
    fresh file from clang), then rename.  Raises OSError (the temporary file is removed)."""
    tmp = f"{path}.autopass-tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def tty_state(environ) -> tuple | None:
    """What clang's diagnostics depend on besides the compile: None when stderr is not a
    terminal, else (TERM, COLUMNS) (LLVM decides colours from TERM, the width from COLUMNS)."""
    try:
        if not os.isatty(2):
            return None
    except OSError:
        return None
    return (environ.get("TERM", ""), environ.get("COLUMNS", ""))


# ---- saves finishing after the client has gone (compile server) ------------------------------
#: Lock stripes of saves in progress: a save holds the stripe of its direct key exclusively; a
#: lookup of that key, and ``stats``/``cache clear``, wait for it (shared lock).  Stripes keep a
#: lookup from waiting on saves of other TUs: with k saves in progress a lookup shares a stripe
#: with one of them with odds ~k/SAVE_STRIPES, and a save runs at nice 19 (server.py), slowly
#: on a machine a parallel build keeps busy -- hence many stripes (lock files made on first use).
SAVE_STRIPES = 256


def _stripe_path(objects_dir: str, stripe: int) -> str:
    return os.path.join(objects_dir, "tmp", f"saving-{stripe:03d}.lock")


def _stripe_of(direct: str) -> int:
    return int(direct[:8], 16) % SAVE_STRIPES


def hold_save(objects_dir: str, direct: str) -> int | None:
    """Take the stripe of ``direct`` for a save that finishes after the compile was reported done
    (server.py): returns the lock's file descriptor, held until the process exits or closes it
    (a worker that serves several calls: wrapper.HELD_LOCKS), or None when
    it cannot be had at once (another save holds the stripe: this one then stays on the call's
    path rather than make the caller wait)."""
    import fcntl
    try:
        fd = os.open(_stripe_path(objects_dir, _stripe_of(direct)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def wait_saves(objects_dir: str, direct: str | None = None, timeout_s: float = 10.0) -> None:
    """Wait until the saves in progress on the stripe of ``direct`` (every stripe when None) are
    done, at most ``timeout_s`` seconds per stripe (a wedged saver must not stall a build)."""
    import fcntl
    import time
    stripes = [_stripe_of(direct)] if direct else range(SAVE_STRIPES)
    paths = [_stripe_path(objects_dir, i) for i in stripes]
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # never used: no save in progress
        try:
            end = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > end:
                        break
                    time.sleep(0.001)
                except OSError:
                    break
        finally:
            os.close(fd)
