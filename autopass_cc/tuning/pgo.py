"""Recording an instrumentation profile of the run command, for profile-guided candidates.

clang's instrumented PGO (Clang User's Manual, "Profiling with Instrumentation"): compile with
``-fprofile-generate`` and link with it (clang adds its profile runtime), run the program with
``LLVM_PROFILE_FILE`` naming where each process writes its raw profile, merge the raw profiles with
``llvm-profdata merge``, and compile with ``-fprofile-instr-use=FILE`` (clang reads from the file
which kind of instrumentation wrote it).  The instrumentation is the IR-level one, which the manual
recommends "for best performance with PGO"; the front-end one (``-fprofile-instr-generate``) is
meant for coverage.  Measured here (whole-program PGO vs -O3, sqlite3 shell of 3.40.1 on an
in-memory SQL workload, CPU-time medians of 15 interleaved runs, two runs): IR 1.235x and 1.203x,
front end 1.148x and 1.141x; on lua 5.4.4, 1.014x vs 1.027x (within noise).

The profile is evidence like the others -- it says which branches the user's own run takes and how
often -- and a pipeline that uses it (pipeline.Pipeline.profile) is a candidate like any other:
built, checked against the reference output and timed, and kept only when measured faster.
Measured here: it is not always faster (whole-program PGO made examples/demo ~1.35x slower with
either kind of instrumentation: 0.28 -> 0.37-0.38 s, CPU time, although its VM loop, 88% of the
run, then executes 3% fewer instructions under callgrind), which is why it is proposed, not applied.

Only the hot TUs the session tunes are instrumented: a TU's profile use reads the records of its
own functions (matched by name and a hash of their control flow; one whose code changed since gets
none), including the inline functions it defines from headers.  The IR-level instrumentation runs
after clang's early cleanup and pre-inlining at the compile's own -O level, so a candidate at
another -O level or with knobs that change that early code may match fewer functions -- which its
measured verdict then reflects.  The split route (an ``opt`` pass pipeline) cannot apply such a
profile: pipeline.validate refuses the combination.
"""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import time

from ..pipeline import profile_path
from .program import BuildFailed, Linked

#: Options in a TU's own compile that mean the build already does profile-guided, coverage or
#: sanitizer instrumentation: a second profile would fight the first (clang takes the last
#: -fprofile-*-use), and instrumented builds are not the ones whose speed matters.
USER_PROFILE_OPTIONS = ("-fprofile-instr-use", "-fprofile-use", "-fprofile-sample-use", "-fauto-profile",
                        "-fprofile-instr-generate", "-fprofile-generate", "-fcs-profile-generate",
                        "--coverage", "-fprofile-arcs", "-fcoverage-mapping", "-fsanitize")


class Recorded:
    """A recorded profile: ``digest`` (SHA-256 hex of the merged .profdata, its name in the cache),
    ``size`` (bytes), ``raw_files`` (processes whose raw profiles were merged: each that ran
    instrumented code wrote one file per instrumented image), ``seconds`` (wall time of the
    instrumented run)."""

    def __init__(self, digest: str, size: int, raw_files: int, seconds: float):
        self.digest, self.size, self.raw_files, self.seconds = digest, size, raw_files, seconds

    def to_dict(self) -> dict:
        return {"digest": self.digest, "bytes": self.size, "raw_files": self.raw_files,
                "seconds": round(self.seconds, 3)}


class NotRecorded(Exception):
    """No profile could be recorded; the message says why (one line, for the session's notes)."""


def user_profile_option(args: list[str]) -> str | None:
    """The first option of :data:`USER_PROFILE_OPTIONS` in a compile's ``args``, or None."""
    for a in args:
        if a.startswith(USER_PROFILE_OPTIONS):
            return a
    return None


def record(program, tu_ids: list[str], run, check, workdir: str) -> Recorded:
    """Build the program with ``tu_ids`` instrumented, run it once, merge and store the profile.

    ``program``: the session's tuning.program.Program; ``run(linked, env_extra) -> RunResult``
    runs the configured command on that build; ``check(result) -> str | None`` says why its
    output is not the reference one (None: it is); ``workdir``: a scratch directory for the raw
    profiles.  The merged profile goes to pipeline.profile_path(digest), written atomically.
    Raises NotRecorded (why) on any failure: the session goes on without a profile."""
    from ..toolchain import llvm_tool
    for t in program.tus:
        if t.tu_id in tu_ids:
            opt = user_profile_option(t.args)
            if opt:
                raise NotRecorded(f"{t.rel} is already compiled with {opt}")
    try:
        profdata = llvm_tool("llvm-profdata")
    except Exception as e:
        raise NotRecorded(str(e)) from None
    try:
        linked: Linked = program.link_config({}, subdir="instrumented", instrument=frozenset(tu_ids))
    except BuildFailed as e:
        raise NotRecorded(f"the instrumented build failed ({e})") from None
    raw_dir = os.path.join(workdir, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    t0 = time.monotonic()
    # %p: one file per process (a run command may start the program many times); %m: one per
    # instrumented image, so a program and its shared library do not overwrite each other.
    result = run(linked, {"LLVM_PROFILE_FILE": os.path.join(raw_dir, "%p-%m.profraw")})
    seconds = time.monotonic() - t0
    why = check(result)
    if why:
        raise NotRecorded(f"the instrumented program's run did not match the reference ({why})")
    raws = sorted(glob.glob(os.path.join(raw_dir, "*.profraw")))
    if not raws:
        raise NotRecorded("the instrumented run wrote no profile (does the run command clear the environment, "
                          "or end the program with a signal?)")
    merged = os.path.join(workdir, "merged.profdata")
    r = subprocess.run([profdata, "merge", "-o", merged] + raws, capture_output=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        tail = r.stderr.decode(errors="replace").strip().splitlines()
        raise NotRecorded(f"llvm-profdata merge failed: {tail[-1] if tail else r.returncode}")
    with open(merged, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    dest = profile_path(digest)
    if not os.path.exists(dest):
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = f"{dest}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, dest)
        except OSError as e:
            raise NotRecorded(f"cannot store the profile in the cache ({e})") from None
    for p in raws:
        try:
            os.unlink(p)
        except OSError:
            pass
    # Files are named <pid>-<module signature>: a process that ran a program and its shared
    # library wrote two.
    processes = len({os.path.basename(r).split("-", 1)[0] for r in raws})
    return Recorded(digest, len(data), processes, seconds)
