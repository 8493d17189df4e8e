"""Running the user's program and deciding, statistically, which build is faster.

Units
-----
Every duration in this module is in **seconds** (``float``).  Ratios are
dimensionless and always oriented as ``incumbent / candidate`` so that a
ratio above 1 means the *candidate* is faster.

CPU time versus wall time
-------------------------
:func:`run_command` reports both:

* ``wall_s`` -- elapsed time on the monotonic clock (``time.perf_counter``)
  from just before the process is spawned until it exits.
* ``cpu_s`` -- user + system CPU time of the whole process tree, taken from
  the ``rusage`` that ``os.wait4`` returns for the shell child.  The kernel
  folds the usage of every descendant that was *waited for* into its parent,
  so a shell running ``make run`` or a pipeline is fully accounted, while
  processes that were still running when the shell exited (and that we kill)
  are not.

``cpu_s`` is the default metric for tuning.  The target machine is a shared,
noisy 2-core box without usable ``perf`` counters: when another job competes
for a core, our process is descheduled and its *wall* time grows, but its
*CPU* time barely changes (only second-order effects such as cache and
frequency interference remain).  CPU time is therefore a much less noisy
estimate of the work the compiled code does.  Its limits: it ignores time
spent blocked (I/O, sleeps, lock waits) and, for multi-threaded programs,
sums the time of all threads -- for such programs wall time may be the
better metric, which is why both are recorded.  CPU time is read with the
kernel's accounting granularity (typically well under a millisecond on
modern kernels, a scheduler tick on old ones), so programs that run for only
a few milliseconds cannot be tuned meaningfully.

Comparison policy (:func:`compare`)
-----------------------------------
* **Warm-up** runs of both variants first (not recorded) to fill page cache,
  dynamic-linker caches and CPU frequency ramps.
* **Interleaving**: the two variants are run in rounds, alternating the
  order inside a round (AB, BA, AB, ...).  This is standard A/B-benchmarking
  practice: slow drift of the machine state (thermal, background load,
  frequency) then affects both arms equally instead of biasing one, and
  consecutive-run effects cancel between rounds.
* **Paired bootstrap** confidence interval (Efron & Tibshirani, *An
  Introduction to the Bootstrap*, 1993, ch. 13 on percentile intervals) of
  the ratio of medians ``median(a) / median(b)``.  Round ``i`` yields the pair
  ``(a[i], b[i])``, so rounds -- not individual runs -- are resampled; this
  keeps the correlation created by shared machine state within a round.
  Medians are used because timing noise is one-sided and heavy-tailed (a
  run can only be slowed down by interference).
* **Sequential stopping**: after ``min_rounds`` the interval is recomputed
  after every round and measurement stops as soon as it lies below 1 (a
  slower candidate: stopping for futility adds no false gains) or above 1
  at the *interim boundary* -- from INTERIM_MIN_ROUNDS rounds on, with the
  interval at INTERIM_CONFIDENCE (99.9%, Haybittle-Peto) above 1 as well;
  at ``max_rounds`` the nominal ``confidence`` decides.  A candidate whose
  median ratio is below ``1 / clear_loss`` after 3 rounds is abandoned early
  to save budget; measurement also stops at the monotonic ``deadline``.

Caveats that callers must respect:

* Looking at the interval after every round ("optional stopping") and the
  percentile bootstrap's known under-coverage for very small samples both
  make a false "faster" verdict more likely than ``1 - confidence``; the
  interim boundary brings it back to about one look's rate (simulated:
  6.7% without it, 1.25% with it and with a single look at round 15).
* When many candidates are tried, the best observed one is biased upward
  (the winner's curse / selection bias of taking the maximum of many noisy
  estimates).  A candidate declared faster here must therefore be
  **confirmed with fresh, independent rounds** before it is adopted; the
  measurements that selected it must not be reused to confirm it.
"""

from __future__ import annotations

import inspect
import math
import os
import signal
import statistics
import subprocess
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import psutil

__all__ = [
    "RunResult",
    "run_command",
    "ratio_ci",
    "Comparison",
    "compare",
]


# --------------------------------------------------------------------------
# Running a command
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """Outcome of one execution of the user's run command.

    Attributes:
        returncode: exit status; negative ``-N`` when the shell process was
            killed by signal ``N`` (same convention as :mod:`subprocess`).
            A program killed by a signal *inside* the shell is usually
            reported by the shell as ``128 + N``.
        stdout: everything written to standard output (bytes).
        stderr: everything written to standard error (bytes).
        wall_s: elapsed wall-clock seconds from spawn to exit.
        cpu_s: user + system CPU seconds of the shell and all descendants
            it waited for (``os.wait4`` rusage).
        timed_out: True when the command exceeded its time limit and the
            process tree was killed (``returncode`` is then ``-9``).
    """

    returncode: int
    stdout: bytes
    stderr: bytes
    wall_s: float
    cpu_s: float
    timed_out: bool


def _read_all(fd_file, chunks: list) -> None:
    """Reader-thread body: drain a pipe into ``chunks`` until EOF, then close it."""
    try:
        fd = fd_file.fileno()
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
    except (OSError, ValueError):
        pass
    finally:
        try:
            fd_file.close()
        except OSError:
            pass


def _kill_tree(pid: int) -> None:
    """SIGKILL the process group ``pid`` and every descendant of ``pid``.

    Descendants are collected first (while the parent links still exist), so
    processes that moved to another process group or session are killed too.
    Must only be called while ``pid`` has not been reaped (it is alive or a
    zombie), so that neither the pid nor the process-group id can have been
    reused by an unrelated process.
    """
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        children = []
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in children:
        try:
            child.kill()  # psutil guards against pid reuse via create time
        except psutil.Error:
            pass


# How long to wait for the output pipes to reach EOF after the process tree is
# gone.  Only a descendant that escaped both the process group and the parent
# links (setsid + double fork) can keep a pipe open that long.
_PIPE_GRACE_S = 2.0


def run_command(
    cmd: str,
    cwd: str,
    timeout_s: float,
    env: Optional[dict] = None,
    stdin=subprocess.DEVNULL,
) -> RunResult:
    """Run ``cmd`` with ``/bin/sh -c`` and measure it.

    The command is the user's own configured text (e.g. the ``run`` entry of
    ``autopass.toml``), so running it through the shell is intended.  It runs
    in a new session / process group whose id is the shell's pid.

    Args:
        cmd: shell command line.
        cwd: working directory for the command.
        timeout_s: time limit in seconds (> 0).  When exceeded, the whole
            process tree (process group plus every descendant found through
            parent links) is killed with SIGKILL.
        env: full environment for the command; ``None`` inherits ours.
        stdin: anything :class:`subprocess.Popen` accepts for ``stdin``;
            default :data:`subprocess.DEVNULL`.

    Returns:
        A :class:`RunResult`.  Whatever output was produced before a timeout
        is kept.

    Raises:
        ValueError: ``timeout_s`` is not a positive finite number.
        OSError: the shell could not be started (e.g. ``cwd`` missing).

    Guarantees: when this function returns (or raises, including on
    ``KeyboardInterrupt``), no process of the command's process group is left
    running: after the shell exits, leftover background members of its group
    are killed before the shell is reaped.
    """
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")

    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        shell=True,
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    pid = proc.pid
    out_chunks: list = []
    err_chunks: list = []
    readers = [
        threading.Thread(target=_read_all, args=(proc.stdout, out_chunks), daemon=True),
        threading.Thread(target=_read_all, args=(proc.stderr, err_chunks), daemon=True),
    ]
    for t in readers:
        t.start()

    # The killer thread and the main thread share `lock`; `exited` is set once
    # the shell is known to have exited (still unreaped), after which only the
    # main thread touches the pid.  Because the zombie is not reaped until
    # after the final group kill, the pid / pgid cannot be recycled under us.
    lock = threading.Lock()
    state = {"exited": False, "timed_out": False}

    def on_timeout() -> None:
        with lock:
            if state["exited"]:
                return
            state["timed_out"] = True
            _kill_tree(pid)

    timer = threading.Timer(timeout_s, on_timeout)
    timer.daemon = True
    timer.start()
    try:
        # Wait for exit without reaping (WNOWAIT) so the pid stays reserved.
        while True:
            try:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
        wall_s = time.perf_counter() - start
    except BaseException:
        # KeyboardInterrupt or similar: never leave the tree behind.
        timer.cancel()
        with lock:
            state["exited"] = True
            _kill_tree(pid)
        try:
            _, status, _ = os.wait4(pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            proc.returncode = -signal.SIGKILL
        raise
    finally:
        timer.cancel()

    with lock:
        state["exited"] = True
        timed_out = state["timed_out"]
    # Kill background leftovers of the group (e.g. `server &`) before reaping;
    # they would otherwise survive and keep our output pipes open.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _, status, rusage = os.wait4(pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    # Tell Popen the child is reaped, so it never waitpid()s a recycled pid.
    proc.returncode = returncode
    cpu_s = rusage.ru_utime + rusage.ru_stime

    deadline = time.monotonic() + _PIPE_GRACE_S
    for t in readers:
        t.join(max(0.0, deadline - time.monotonic()))
    # A reader still alive here is blocked on a pipe held by a process that
    # escaped the group via setsid(); it is a daemon thread and closes its
    # pipe when that process exits.  Take what was read so far.
    return RunResult(
        returncode=returncode,
        stdout=b"".join(list(out_chunks)),
        stderr=b"".join(list(err_chunks)),
        wall_s=wall_s,
        cpu_s=cpu_s,
        timed_out=timed_out,
    )


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def _check_samples(a: Sequence[float], b: Sequence[float]) -> tuple:
    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    if xa.ndim != 1 or xb.ndim != 1:
        raise ValueError("samples must be one-dimensional sequences of seconds")
    if len(xa) != len(xb):
        raise ValueError(
            f"paired samples need equal lengths, got {len(xa)} and {len(xb)}"
        )
    if len(xa) < 2:
        raise ValueError(f"need at least 2 rounds for a confidence interval, got {len(xa)}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(xb))):
        raise ValueError("samples must be finite")
    if np.any(xa <= 0) or np.any(xb <= 0):
        raise ValueError(
            "samples must be positive durations in seconds; a time of 0 means the "
            "program runs for less than the clock resolution and cannot be tuned"
        )
    return xa, xb


def _median_ratio(a, b, axis=-1):
    return np.median(a, axis=axis) / np.median(b, axis=axis)


def ratio_ci(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple:
    """Ratio of medians ``median(a) / median(b)`` with a paired bootstrap CI.

    Args:
        a: incumbent times in seconds, one per round (length n >= 2).
        b: candidate times in seconds, same length; ``b[i]`` was measured in
            the same round as ``a[i]``.
        confidence: two-sided confidence level in (0, 1).
        n_resamples: bootstrap resamples.
        seed: seed of the resampling generator; equal inputs and seed give
            identical results.

    Returns:
        ``(ratio, ci_low, ci_high)``, dimensionless; ``ratio > 1`` means the
        candidate is faster.  The interval is a percentile bootstrap
        (Efron & Tibshirani 1993) that resamples whole rounds (pairs).  When
        every resample gives the same ratio (e.g. constant samples) the
        interval degenerates to ``(ratio, ratio)``.

    Raises:
        ValueError: lengths differ, fewer than 2 rounds, a value is not a
            positive finite number, or ``confidence`` is outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    xa, xb = _check_samples(a, b)
    ratio = float(np.median(xa) / np.median(xb))

    # Degenerate: all pairs identical -> every resample has the same ratio.
    pairs = np.stack([xa, xb], axis=1)
    if np.all(pairs == pairs[0]):
        return ratio, ratio, ratio

    from scipy import stats  # lazy: scipy import is slow, keep CLI start fast

    kwargs = {}
    params = inspect.signature(stats.bootstrap).parameters
    rng = np.random.default_rng(seed)
    if "rng" in params:
        kwargs["rng"] = rng
    else:  # pragma: no cover - scipy < 1.15
        kwargs["random_state"] = rng
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (xa, xb),
            _median_ratio,
            n_resamples=n_resamples,
            vectorized=True,
            paired=True,
            confidence_level=confidence,
            method="percentile",
            **kwargs,
        )
    lo = float(res.confidence_interval.low)
    hi = float(res.confidence_interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # pragma: no cover - defensive
        return ratio, ratio, ratio
    # Floating rounding can put a degenerate interval a hair off the estimate.
    return ratio, min(lo, ratio), max(hi, ratio)


def _relative_mad(a: Sequence[float], b: Sequence[float]) -> float:
    """Pooled relative median absolute deviation.

    Each sample's absolute deviation from its own arm's median is divided by
    that median; the result is the median of these relative deviations over
    both arms together.  Measuring each arm around its own median keeps a
    real A/B difference from being reported as noise.
    """
    devs = []
    for xs in (a, b):
        if not xs:
            continue
        m = statistics.median(xs)
        if m > 0:
            devs.extend(abs(x - m) / m for x in xs)
    return float(statistics.median(devs)) if devs else 0.0


def _json_float(x: float) -> Optional[float]:
    return float(x) if math.isfinite(x) else None


@dataclass
class Comparison:
    """Result of an interleaved A/B measurement (see :func:`compare`).

    Attributes:
        ratio: ``median(a_samples) / median(b_samples)``; > 1 means the
            candidate (B) is faster.  ``nan`` when no round ran.
        ci_low, ci_high: bootstrap confidence interval of ``ratio``
            (``0`` / ``inf`` when fewer than 2 rounds ran).
        confidence: confidence level of the interval, e.g. 0.95.
        rounds: number of recorded rounds (each has one A and one B run).
        a_samples, b_samples: recorded metric values, seconds, by round.
        noise: pooled relative median absolute deviation (dimensionless,
            e.g. 0.02 = 2 %).
        verdict: ``"faster"`` if ``ci_low > 1``, ``"slower"`` if
            ``ci_high < 1``, else ``"inconclusive"``.
        stopped_early_reason: why measurement ended before ``max_rounds`` ("negligible" too):
            ``"significant"`` (interval excludes 1), ``"clear_loss"``
            (candidate clearly worse), ``"negligible"`` (interval inside the
            ``negligible`` band), ``"deadline"``; ``None`` when it ran
            to ``max_rounds``.
    """

    ratio: float
    ci_low: float
    ci_high: float
    confidence: float
    rounds: int
    a_samples: list = field(default_factory=list)
    b_samples: list = field(default_factory=list)
    noise: float = 0.0
    verdict: str = "inconclusive"
    stopped_early_reason: Optional[str] = None

    @property
    def significant(self) -> bool:
        """True when the candidate is faster with the stated confidence."""
        return self.verdict == "faster"

    def to_dict(self) -> dict:
        """JSON-ready dict; non-finite floats (nan, inf) become ``None``."""
        d = asdict(self)
        for key in ("ratio", "ci_low", "ci_high", "noise"):
            d[key] = _json_float(d[key])
        d["a_samples"] = [float(x) for x in self.a_samples]
        d["b_samples"] = [float(x) for x in self.b_samples]
        d["significant"] = self.significant
        return d


def _verdict(lo: float, hi: float) -> str:
    if lo > 1.0:
        return "faster"
    if hi < 1.0:
        return "slower"
    return "inconclusive"


def _checked_metric(value: float, which: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(
            f"measurement of {which} returned {value!r} s; the metric must be a "
            "positive number of seconds (0 means the run is shorter than the "
            "clock resolution: make the run command do more work)"
        )
    return v


#: Confidence level of the interval at the looks before the last (:func:`compare`): the
#: Haybittle-Peto boundary, p < 0.001 at every interim analysis and the nominal level at the
#: final one (Haybittle 1971, Br J Radiol 44:793; Peto et al. 1976, Br J Cancer 34:585), which keeps
#: the overall error rate close to the nominal one however many looks there are.  Measured here
#: (a simulation of A/B comparisons of equal programs, 1% noise with heavy tails, rounds 5-15:
#: tests/unit/test_measure.py): looking at 95% after every round from the 5th called 6.7% of them
#: faster (9.7% with a session's second look, measure.pooled), a single look at round 15 1.25%;
#: session 12 saw 2-3 false accepts in a budget of 16 on programs with nothing to gain.
INTERIM_CONFIDENCE = 0.999
#: ... and no interim "faster" stop before this many rounds.  A percentile bootstrap cannot give
#: 99.9% from a handful of rounds: when all n rounds favour the candidate (chance 2^-n for equal
#: programs: 3% at n = 5) every resample does, and the interval excludes 1 at any level.  In the
#: same simulation, interim stops from round 5 on still gave 4.2% false "faster" verdicts, from
#: round 8 on 1.25%, the rate of a single look at round 15 (2^-8 = 0.4%).
INTERIM_MIN_ROUNDS = 8


def compare(
    run_a: Callable[[], float],
    run_b: Callable[[], float],
    *,
    min_rounds: int = 5,
    max_rounds: int = 15,
    warmup: int = 1,
    confidence: float = 0.95,
    seed: int = 0,
    deadline: Optional[float] = None,
    clear_loss: float = 1.25,
    negligible: float = 0.0,
    interim_confidence: Optional[float] = INTERIM_CONFIDENCE,
) -> Comparison:
    """Interleaved A/B measurement of incumbent ``run_a`` vs candidate ``run_b``.

    Each callable runs the program once and returns the metric in seconds
    (normally ``RunResult.cpu_s``); exceptions they raise propagate unchanged
    (e.g. when the caller's verification of the output fails).

    Policy (details and sources in the module docstring):

    1. ``warmup`` unrecorded runs of A then B.
    2. Rounds; round ``i`` (0-based) runs A then B when ``i`` is even and
       B then A when odd.
    3. After each round ``r >= 3``: if ``median(a)/median(b) < 1/clear_loss``
       stop (``"clear_loss"``).  After each round ``r >= min_rounds``: stop as
       soon as the paired-bootstrap interval of the ratio excludes 1
       (``"significant"``; a "faster" stop before ``max_rounds`` needs the
       wider interval at ``interim_confidence`` above 1 too: INTERIM_CONFIDENCE,
       and so does a "faster" verdict after a deadline), or -- with
       ``negligible`` > 0 -- as soon as it lies
       inside [1 - negligible, 1 + negligible] (``"negligible"``: whatever the
       effect is, it is too small to be worth more runs).
    4. Stop at ``max_rounds``, or before starting a warm-up or round when the
       monotonic clock (``time.monotonic()``) has reached ``deadline``
       (``"deadline"``).  A round in progress is never cut short.

    Because the interval is inspected after every round and the best of
    many candidates is biased upward, callers must confirm a ``"faster"``
    winner with a fresh ``compare`` before adopting it.

    Args:
        run_a: incumbent; returns seconds (> 0).
        run_b: candidate; returns seconds (> 0).
        min_rounds: rounds before the significance test is applied (>= 2).
        max_rounds: hard cap on rounds (>= min_rounds).
        warmup: unrecorded runs of each variant (>= 0).
        confidence: confidence level of the interval, in (0, 1).
        seed: bootstrap seed (results are reproducible for equal samples).
        deadline: absolute ``time.monotonic()`` value, or ``None``.
        clear_loss: early abandonment threshold (> 1); 1.25 abandons a
            candidate whose median is 25 % slower than the incumbent's.
        negligible: half-width (a ratio, e.g. 0.01) of the band around 1 in
            which an interval stops the measurement; 0 disables the rule.
        interim_confidence: confidence level of the interval that may stop
            the measurement as significant before ``max_rounds``; None: the
            same as ``confidence`` (every look at the nominal level).

    Returns:
        A :class:`Comparison`.

    Raises:
        ValueError: invalid arguments, or a callable returned a
            non-positive / non-finite time.
        Exception: anything ``run_a`` / ``run_b`` raise.
    """
    if min_rounds < 2:
        raise ValueError(f"min_rounds must be >= 2, got {min_rounds}")
    if max_rounds < min_rounds:
        raise ValueError(f"max_rounds ({max_rounds}) must be >= min_rounds ({min_rounds})")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not clear_loss > 1.0:
        raise ValueError(f"clear_loss must be > 1, got {clear_loss!r}")

    def past_deadline() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    a: list = []
    b: list = []
    reason: Optional[str] = None
    strict_looks = interim_confidence is not None and interim_confidence > confidence

    for _ in range(warmup):
        if past_deadline():
            reason = "deadline"
            break
        run_a()
        run_b()

    ci: Optional[tuple] = None
    if reason is None:
        for i in range(max_rounds):
            if past_deadline():
                reason = "deadline"
                break
            if i % 2 == 0:
                ta = _checked_metric(run_a(), "A (incumbent)")
                tb = _checked_metric(run_b(), "B (candidate)")
            else:
                tb = _checked_metric(run_b(), "B (candidate)")
                ta = _checked_metric(run_a(), "A (incumbent)")
            a.append(ta)
            b.append(tb)
            r = len(a)
            ci = None
            if r >= 3 and statistics.median(a) / statistics.median(b) < 1.0 / clear_loss:
                reason = "clear_loss"
                break
            if r >= min_rounds:
                ci = ratio_ci(a, b, confidence=confidence, seed=seed)
                # Stopping early as slower (futility) cannot add false "faster" verdicts; stopping
                # early as faster must pass the stricter interim boundary.
                if ci[2] < 1.0 or (ci[1] > 1.0 and (r == max_rounds or not strict_looks
                                                    or _faster_at(a, b, interim_confidence, seed))):
                    reason = "significant" if r < max_rounds else None
                    break
                if negligible > 0 and ci[1] >= 1.0 - negligible and ci[2] <= 1.0 + negligible:
                    reason = "negligible" if r < max_rounds else None
                    break

    rounds = len(a)
    if rounds >= 2:
        if ci is None:
            ci = ratio_ci(a, b, confidence=confidence, seed=seed)
        ratio, lo, hi = ci
    elif rounds == 1:
        ratio, lo, hi = a[0] / b[0], 0.0, math.inf
    else:
        ratio, lo, hi = math.nan, 0.0, math.inf

    verdict = _verdict(lo, hi)
    if verdict == "faster" and strict_looks and rounds < max_rounds and not _faster_at(a, b, interim_confidence, seed):
        verdict = "inconclusive"  # (stopped before the last look -- a deadline -- short of the interim boundary)
    return Comparison(
        ratio=ratio,
        ci_low=lo,
        ci_high=hi,
        confidence=confidence,
        rounds=rounds,
        a_samples=a,
        b_samples=b,
        noise=_relative_mad(a, b),
        verdict=verdict,
        stopped_early_reason=reason,
    )


def _faster_at(a: list, b: list, confidence: float, seed: int) -> bool:
    """The interim boundary: at least INTERIM_MIN_ROUNDS rounds, and the paired-bootstrap interval
    of median(a)/median(b) at ``confidence`` above 1."""
    return len(a) >= INTERIM_MIN_ROUNDS and ratio_ci(a, b, confidence=confidence, seed=seed)[1] > 1.0


#: A candidate still "inconclusive" after ``max_rounds`` whose ratio of medians is at least this
#: (a 2 % gain: four times the default ``min_gain``) gets a second look (:func:`pooled`).  Seen on
#: this machine: the demo's best move measured 1.040 [0.994, 1.053] in one session and was
#: dropped; in others it was accepted at 1.048-1.054 and confirmed.
PROMISING_RATIO = 1.02


def promising(cmp: Comparison) -> bool:
    """True when ``cmp`` ran all its rounds, stayed inconclusive, and its point estimate is a
    gain of at least PROMISING_RATIO: worth more rounds before it is dropped."""
    return (cmp.verdict == "inconclusive" and cmp.stopped_early_reason is None and cmp.rounds >= 2
            and math.isfinite(cmp.ratio) and cmp.ratio >= PROMISING_RATIO)


def pooled(first: Comparison, second: Comparison, seed: int = 0) -> Comparison:
    """One comparison from the rounds of two (a second look at a :func:`promising` candidate):
    samples concatenated, ratio and paired-bootstrap interval recomputed.  Looking twice raises
    the chance of a false "faster" somewhat; a session confirms its final winner with fresh
    rounds (ARCHITECTURE.md decision 5), which catches it."""
    a = list(first.a_samples) + list(second.a_samples)
    b = list(first.b_samples) + list(second.b_samples)
    ratio, lo, hi = ratio_ci(a, b, confidence=first.confidence, seed=seed)
    return Comparison(ratio=ratio, ci_low=lo, ci_high=hi, confidence=first.confidence, rounds=len(a),
                      a_samples=a, b_samples=b, noise=_relative_mad(a, b), verdict=_verdict(lo, hi),
                      stopped_early_reason=second.stopped_early_reason)
