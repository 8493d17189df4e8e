"""The per-project build log: every intercepted compile and every link, one JSON object a line.

File: ``<project>/.autopass/buildlog.jsonl``.  Each record is appended with a single ``write`` on a
file opened with O_APPEND, which POSIX keeps whole for concurrent writers of small records (make
-j), so no lock is needed.  A session reads it to recompile one TU and relink without rerunning the
build: the latest record for an output path wins.

Compile record: ``{"kind": "compile", "cwd", "compiler", "args", "source", "output", "lang",
"key", "tu_id", "time"}`` (``source``/``output`` absolute).  Link record: ``{"kind": "link", "cwd",
"compiler", "args", "output", "inputs", "time"}`` (``output``/``inputs`` absolute).  Unrecorded
record: ``{"kind": "unrecorded", "outputs", "time"}``: objects a compile autopass-cc passed through
wrote (a response file, an assembler source, ...); an older compile record of those paths no longer describes
them (seen on lz4: a session rebuilt an object from a record of an earlier build with other
flags, overriding the user's ``-O2``).
"""

from __future__ import annotations

import os
import time

from .config import state_dir

LOG_NAME = "buildlog.jsonl"


def log_path(project: str) -> str:
    return os.path.join(state_dir(project), LOG_NAME)


def dumps(record: dict) -> str:
    """``json.dumps(record)`` without importing json on the compile hot path (cachekey.json_text)."""
    from .cachekey import json_text
    return json_text(record)


def append(project: str, record: dict) -> None:
    """Append one record (adds ``time``).  Raises OSError if the state directory is unwritable."""
    os.makedirs(state_dir(project), exist_ok=True)
    line = (dumps({**record, "time": time.time()}) + "\n").encode("utf-8", "surrogateescape")
    fd = os.open(log_path(project), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read(project: str) -> list[dict]:
    """All well-formed records in order (a torn last line is skipped)."""
    import json
    out = []
    try:
        with open(log_path(project), encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return out


def latest(records: list[dict]) -> tuple[dict, dict]:
    """``(compiles, links)``: the newest record per output path, each a dict path -> record; a
    compile record followed by an unrecorded record of its output is dropped."""
    compiles, links = {}, {}
    for r in records:
        kind = r.get("kind")
        if kind == "compile":
            compiles[r.get("output")] = r
        elif kind == "unrecorded":
            for out in r.get("outputs") or ():
                compiles.pop(out, None)
        else:
            links[r.get("output")] = r
    return compiles, links
