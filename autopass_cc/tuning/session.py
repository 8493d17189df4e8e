"""A tuning session: build log -> hot TUs -> propose / build / verify / measure / diagnose -> cache.

Steps (ARCHITECTURE.md, data flow; the AutoPass loop):

1. take the project lock (``.autopass/session.lock``, flock: released even on SIGKILL) and repair
   a binary swap left by a killed session;
2. rebuild the target from the build log with the user's own flags (the *baseline*) in
   ``.autopass/sessions/<id>/scratch`` and run the user's run command on it twice after a
   warm-up: same exit status and stdout both times, or the session stops and says so;
3. find the hot TUs (callgrind profile of the run command; every TU when profiling is off or
   fails), collect their evidence (optimization remarks, IR statistics), and (config ``pgo``)
   record an instrumentation profile of one run with the hot TUs instrumented (tuning/pgo.py),
   which candidates may then use (Pipeline.profile);
4. loop until the trial budget is spent: ask the proposer, validate each pipeline against the
   allowlist and the installed LLVM, build (TU, then relink), skip candidates that change nothing
   (every changed TU's object byte-identical to the incumbent's: not linked; or the binary
   byte-identical to one already measured: not run; these *same-binary* trials do not consume the
   budget and have a cap of their own, FREE_TRIALS_PER_BUDGET), verify the output against the
   reference, measure incumbent vs candidate with interleaved rounds and a bootstrap CI of the
   ratio of medians (stopping early once the CI excludes 1 -- for a gain, past the stricter
   interim boundary of measure.INTERIM_CONFIDENCE -- or lies within +-2x ``min_gain``;
   one still inconclusive at ``max_rounds`` with a 2 %+ point gain gets as many rounds again,
   pooled: measure.promising), accept only when the CI excludes 1 and the gain is at least
   ``min_gain``, diagnose regressions, tell the proposer;
5. confirm the final incumbent against the baseline with fresh rounds (the best of many noisy
   trials is biased upward: ARCHITECTURE.md decision 5) and store the pipelines only then; when it
   does not hold, confirm the incumbents before it, newest first (CONFIRM_FALLBACKS);
6. write the report (JSON, text summary, plot) and restore the user's binary.

The user's objects are never written; the target binary is swapped only for the duration of a run
and restored on exit, Ctrl-C (KeyboardInterrupt), SIGTERM, or -- for SIGKILL -- by the next session.
The scratch tree (an object per TU and pipeline tried), the evidence files (remark YAML, IR) and the
profile are removed at the end unless ``AUTOPASS_KEEP_SCRATCH=1``; the report stays in
``.autopass/sessions/<id>/``.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict

from .. import cachekey
from ..config import cache_dir, state_dir
from ..errors import PipelineError, SessionError
from ..invocation import Invocation
from ..pipeline import Pipeline, Policy, validate
from ..store import open_store
from ..toolchain import compiler_identity, host_cpu, host_flag_trouble, llvm_option_names
from .measure import compare, pooled, promising, run_command
from .program import BinarySwap, BuildFailed, Linked, Program, file_digest, recover
from .proposers.base import Proposal, SearchState, TrialResult, TUInfo, config_digest
from .report import ci_text
from .verify import establish_reference, verify


def _is_terminal(stream) -> bool:
    """True when ``stream`` is a terminal (never raises: a closed or replaced stream is not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _took(result) -> str:
    """A timed trial's time for its progress line, split when it is long: QuickJS's trials took
    35-60 s and two 273-315 s, and the line did not say it was compiling quickjs.c with a high
    inline threshold, or measuring more rounds."""
    text = f"{result.seconds:.0f} s"
    if result.seconds >= 60 and result.rounds:
        text += f": build {result.build_seconds:.0f} s, {result.rounds} rounds"
    return text


#: Callgrind runs programs many times slower (measured here: jq 1.6 over 60x); a session gives it CALLGRIND_FACTOR x the run's time, at least CALLGRIND_MIN_S.  With
#: ``profile = "auto"`` and a PGO session, a run whose callgrind budget would exceed
#: CALLGRIND_MAX_S seconds is not tried under callgrind: the hot TUs come from the instrumentation
#: profile at once (measured on jq 1.6, a 2.6 s run: callgrind timed out after 156 s; the
#: instrumentation profile then found jv.c 38% and execute.c 25% in one 3 s run).
CALLGRIND_FACTOR = 60
CALLGRIND_MIN_S = 60.0
CALLGRIND_MAX_S = 150.0
#: The longest a diagnosis's evidence compile may take, in seconds (evidence.collect's default).
EVIDENCE_LIMIT_S = 600.0


#: Cap on same-binary trials (not timed, not charged to the budget): max(FREE_TRIALS_PER_BUDGET x
#: budget, FREE_TRIALS_MIN).  Measured: 27 of 36 trials of a demo session and 33 of 48 on other
#: programs built byte-identical binaries (2-3 free trials per measured one), and the old cap
#: of 3 x budget trials in all ended sessions after ~15 measured candidates of a budget of 16-24.
#: 4 per unit of budget leaves room for sessions with ~80% free trials; the floor of 40 lets a
#: small budget still get past the offline proposer's 16 program-wide moves and its pass-pipeline
#: edits.  A free trial costs the compiles of the changed TUs (no link when the objects already
#: match, no runs), so the cap only guards against a proposer that never changes the code.
FREE_TRIALS_PER_BUDGET = 4
FREE_TRIALS_MIN = 40
#: When the final incumbent does not hold on confirmation (step 5), the incumbents before it are
#: confirmed in turn, newest first, at most this many of them.  An accepted trial can be a false
#: positive (95% per trial over a budget of 16: session 12 saw 2-3 on programs with nothing to
#: gain), and one on top of a real gain -- say a profile worth 8% -- can drag the whole
#: configuration below significance; undoing the newest accepts first keeps what held.  Each
#: extra confirmation costs ``confirm_rounds`` runs of both binaries, paid only when one fails.
CONFIRM_FALLBACKS = 2
#: Each fallback confirmation is one more chance for a configuration that gains nothing to pass by
#: noise, so it is made at this share of the error rate (1 - confidence): 0.99 for 0.95, and the
#: three confirmations together stay under 1.4x one confirmation's rate (Bonferroni's bound).
FALLBACK_ALPHA_SHARE = 0.2
#: Below this share of the run's instructions in the TUs the build compiled through autopass-cc
#: (0..1, from the profile), the search is skipped: at 1% a TU made twice as fast changes the run
#: by 0.5%, under what a trial can tell from this machine's noise (~1-2%, tuning/measure.py).
MIN_TARGET_SHARE = 0.01


class SessionLocked(SessionError):
    """Another session holds the project's lock."""


class _Lock:
    def __init__(self, project: str):
        os.makedirs(state_dir(project), exist_ok=True)
        self.path = os.path.join(state_dir(project), "session.lock")
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise SessionLocked("another tuning session is running for this project (lock "
                                f"{self.path}); wait for it or stop it") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt


def make_proposer(name: str, settings: dict, seed: int, transcript: str | None = None, note=print):
    """The proposer called ``name`` (``auto`` picks ``llm`` when an endpoint is configured, else
    ``offline``).  Raises SessionError for an unknown name."""
    from .proposers.offline import OfflineProposer
    from .proposers.random import RandomProposer
    llm_conf = settings.get("llm") or {}
    if name == "auto":
        name = "llm" if (llm_conf.get("base_url") or os.environ.get("OPENAI_BASE_URL")) else "offline"
    if name == "offline":
        return OfflineProposer(seed=seed)
    if name == "random":
        return RandomProposer(seed=seed)
    if name == "llm":
        try:
            from .proposers.llm import LLMProposer
        except ImportError as e:
            note(f"the LLM proposer is unavailable ({e}); using the offline proposer")
            return OfflineProposer(seed=seed)
        return LLMProposer(settings, seed=seed, transcript_path=transcript, fallback=OfflineProposer(seed=seed),
                           note=note)
    raise SessionError(f"unknown proposer {name!r}; choose offline, random or llm")


class Session:
    """One tuning session for a project.  ``settings``: config.load() output; ``progress``: show a
    progress bar on stderr; ``note``: callable printing one line to the user.  ``run()`` returns
    the report dict; it raises SessionError subclasses with one-line messages for what the user
    must fix (no link in the build log, run command fails, output not deterministic, lock held)."""

    def __init__(self, project: str, settings: dict, *, budget: int | None = None, seed: int | None = None,
                 proposer: str | None = None, progress: bool = True, note=None, store_results: bool = True):
        self.project = project
        self.settings = settings
        self.budget = int(budget if budget is not None else settings["budget"])
        self.seed = int(seed if seed is not None else settings["seed"])
        self.proposer_name = proposer or settings["proposer"]
        self.progress = progress
        self.note = note or (lambda msg: print(f"autopass-cc: {msg}", file=sys.stderr, flush=True))
        self.store_results = store_results
        self._early_profile: str | None = None  # an instrumentation profile recorded to find the hot TUs
        self._target_share: float | None = None  # share of the run in the build's TUs (0..1), when profiled
        self._inc_evidence: dict = {}  # (TU id, incumbent pipeline digest) -> evidence, or the error collecting it
        self._obj_digests: dict[str, str] = {}   # scratch object path -> SHA-256
        self._touched: set[str] = set()          # TU ids some built trial changed
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.id = f"{stamp}-{os.getpid()}"
        self.dir = os.path.join(state_dir(project), "sessions", self.id)
        if not settings.get("run"):
            raise SessionError("no run command configured; run: autopass-cc init --run 'CMD' --target PATH")
        if not settings.get("target"):
            raise SessionError("no target configured; set target = \"path/to/binary\" in autopass.toml")

    # -- running the program -------------------------------------------------------------------
    def _run(self, binary: Linked, timeout: float, env_extra: dict | None = None):
        self.swap.install(binary)
        env = dict(os.environ, AUTOPASS_IN_SESSION="1", AUTOPASS_TUNE="0", **(env_extra or {}))
        return run_command(self.settings["run"], cwd=self.project, timeout_s=timeout, env=env)

    def _timed(self, binary: Linked, timeout: float):
        """A callable for measure.compare: run once, check the output, return the metric (s)."""
        metric = self.settings["metric"]

        def once() -> float:
            r = self._run(binary, timeout)
            v = verify(self.reference, r)
            if not v.ok:
                raise _WrongOnRepeat(v.reason)
            return r.cpu_s if metric == "cpu" else r.wall_s
        return once

    # -- the session ---------------------------------------------------------------------------
    def run(self) -> dict:
        os.makedirs(self.dir, exist_ok=True)
        old_term = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
        except ValueError:
            old_term = None  # not the main thread
        try:
            with _Lock(self.project):
                fixed = recover(self.project)
                if fixed:
                    self.note(fixed)
                self.program = Program(self.project, self.settings["target"], os.path.join(self.dir, "scratch"))
                try:
                    with BinarySwap(self.project, [i.path for i in self.program.images]) as self.swap:
                        return self._session()
                finally:
                    if not os.environ.get("AUTOPASS_KEEP_SCRATCH"):
                        # Objects, remark YAML and IR (175 MB for sqlite3.c) and callgrind output:
                        # the report keeps what was learnt from them.
                        for sub in ("scratch", "evidence", "profile"):
                            shutil.rmtree(os.path.join(self.dir, sub), ignore_errors=True)
        finally:
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)

    def _session(self) -> dict:
        t0 = time.monotonic()
        prog = self.program
        ident = compiler_identity(prog.tus[0].compiler)
        self.policy = Policy(allow_unsafe_math=self.settings["allow_unsafe_math"],
                             allow_native=self.settings["allow_native"],
                             llvm_options=llvm_option_names(prog.tus[0].compiler),
                             host_trouble=host_flag_trouble(prog.tus[0].compiler))
        report = {"session": self.id, "project": self.project, "target": prog.target, "run": self.settings["run"],
                  "budget": self.budget, "seed": self.seed, "metric": self.settings["metric"],
                  "compiler": ident.get("version"), "started": datetime.datetime.now().isoformat(timespec="seconds"),
                  "cache": cache_dir(),
                  "tus": [], "trials": [], "notes": []}
        self.report = report
        # 2. baseline and reference output
        baseline = {}
        try:
            base_bin = prog.link_config(baseline)
        except BuildFailed as e:
            raise SessionError(f"the baseline does not rebuild from the build log ({e}); rebuild the project "
                               "from clean through autopass-cc and try again") from None
        timeout = float(self.settings["run_timeout"])
        runs = [self._run(base_bin, timeout) for _ in range(3)]
        self.reference = establish_reference(runs[1:])
        base_time = sorted(r.cpu_s if self.settings["metric"] == "cpu" else r.wall_s for r in runs[1:])[0]
        self.run_timeout = min(timeout, max(10.0, 8 * max(r.wall_s for r in runs)))
        report["baseline"] = {"seconds": base_time, "binary_sha256": base_bin.digest()}
        self._phase(f"baseline: {base_time:.3f} s per run ({self.settings['metric']} time)")
        # 3. hot TUs and evidence
        tus = self.tus = self._hot_tus(base_bin, report)
        report["tus"] = [{"tu": t.tu_id, "source": t.source, "weight": t.weight, "hot_functions": t.hot_functions[:5]}
                         for t in tus]
        search = True
        if self._target_share is not None and self._target_share < MIN_TARGET_SHARE:
            # Seen on lz4 before multi-source compiles were split: its library passed through, the
            # only TU left held 0.0015% of the run, and 8 trials (12 minutes) measured noise.
            search = False
            msg = (f"the run spends {self._target_share:.2%} of its instructions in the TUs this build compiled "
                   "through autopass-cc: no trial could measure a difference, so the search is skipped (is the hot "
                   "code built another way, or in a library from outside the build?)")
            report["notes"].append(msg)
            self._phase(msg)
        profile = None if not search else (
            self._early_profile or (self._record_profile(tus, report) if self.settings["pgo"] else None))
        proposer = make_proposer(self.proposer_name, self.settings, self.seed,
                                 transcript=os.path.join(self.dir, "transcript.jsonl"), note=self.note)
        report["proposer"] = proposer.name
        # 4. the loop
        incumbent: dict = {}
        inc_bin = base_bin
        measured = {base_bin.digest(): "baseline"}
        tried = {config_digest(incumbent)}
        earlier = self._tried_before(report["baseline"]["binary_sha256"])
        if earlier:
            tried |= earlier
            report["notes"].append(f"{len(earlier)} configuration(s) measured by earlier sessions on this same "
                                   "build (not faster there) are not tried again (a configuration is the "
                                   "whole set of pipelines: an edit measured on top of another incumbent "
                                   "may come back on top of this one)")
        history: list[TrialResult] = []
        accepted: list[tuple[int, dict, Linked]] = []  # (trial, configuration, binary), oldest first
        bar = self._bar()
        lines = self.progress and not _is_terminal(sys.stderr)
        dup_streak = 0
        trial = spent = free = 0
        max_free = max(FREE_TRIALS_PER_BUDGET * self.budget, FREE_TRIALS_MIN)
        try:
            # A same-binary trial costs compiles (and a link when the objects differ) but no runs:
            # it does not consume the budget, and has a cap of its own (max_free), so free trials
            # can neither starve the budget nor run forever.  Every pass of the loop either ends
            # it, counts a repeat (dup_streak), or adds to ``spent`` or ``free``.
            while search and spent < self.budget and free < max_free:
                state = SearchState(tus=tus, incumbent=dict(incumbent), history=list(history), policy=self.policy,
                                    trials_left=self.budget - spent, tried=set(tried), profile=profile)
                try:
                    proposal = proposer.ask(state)
                except Exception as e:  # a proposer bug ends the search, not the session
                    self.note(f"the {proposer.name} proposer failed ({type(e).__name__}: {e}); ending the search")
                    break
                if proposal is None:
                    report["notes"].append(f"the {proposer.name} proposer had nothing more to propose")
                    break
                config = {**incumbent, **proposal.changes}
                digest = config_digest(config)
                if digest in tried:
                    dup_streak += 1
                    if dup_streak > 20:
                        break
                    continue
                dup_streak = 0
                trial += 1
                tried.add(digest)
                started = time.monotonic()
                result, cand_bin = self._trial(trial, proposal, config, incumbent, inc_bin, measured)
                result.seconds = round(time.monotonic() - started, 3)
                if result.verdict == "same-binary":
                    free += 1
                else:
                    spent += 1
                if result.accepted:
                    incumbent, inc_bin = config, cand_bin
                    accepted.append((trial, config, cand_bin))
                history.append(result)
                proposer.tell(result)
                report["trials"].append({**self._trial_dict(result), "config": digest})
                if bar is not None:
                    bar.set_postfix_str(f"{result.verdict} {result.ratio:.3f}x" if result.ratio else result.verdict)
                    bar.update(result.verdict != "same-binary")
                if lines and result.verdict != "same-binary":
                    # (no bar without a terminal: a line per timed trial shows a long session is alive)
                    edits = ", ".join(map(str, proposal.edits)) or proposal.agent
                    where = sorted(self.program.tu(t).rel for t in proposal.changes)
                    where = (", ".join(where[:3]) + (f" +{len(where) - 3}" if len(where) > 3 else "")) if where else ""
                    self.note(f"trial {trial} ({spent}/{self.budget} of the budget"
                              + (f"; {free} same-binary so far, not timed" if free else "")
                              + f"): {where + ': ' if where else ''}{edits[:100]} -> {result.verdict}"
                              + (f" {result.ratio:.3f}x" if result.ratio else "") + f" ({_took(result)})")
        finally:
            if bar is not None:
                bar.close()
            proposer.close()
        if free >= max_free and spent < self.budget:
            report["notes"].append(f"stopped after {free} trials that changed no code (the cap for a budget of "
                                   f"{self.budget}); {spent} of the budget used")
        report["proposer_notes"] = getattr(proposer, "report", lambda: {})()
        # 5. confirmation against the baseline with fresh rounds
        winner, confirmation = self._confirm(base_bin, accepted, report)
        report["winner"] = {tu: p.to_dict() for tu, p in winner.items()}
        report["speedup"] = confirmation.ratio if (confirmation and winner) else 1.0
        report["speedup_ci"] = [confirmation.ci_low, confirmation.ci_high] if (confirmation and winner) else None
        if self.store_results:
            report["stored"] = self._store(winner, tus, report, ident)
        report["seconds"] = round(time.monotonic() - t0, 1)
        report["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        from .report import write_report
        report["files"] = write_report(report, self.dir)
        return report

    # -- pieces --------------------------------------------------------------------------------
    def _confirm(self, base_bin: Linked, accepted: list, report: dict):
        """Step 5: confirm the final incumbent against the baseline with ``confirm_rounds`` fresh
        rounds; when it does not hold, the incumbents before it, newest first (CONFIRM_FALLBACKS).
        ``accepted`` is ``[(trial, configuration, binary)]`` oldest first.  Returns ``(winner,
        comparison)``: the configuration that held (TU id -> Pipeline, user-flag TUs left out; {}
        when none did) and its measure.Comparison (the final incumbent's when none held, None when
        nothing was accepted).  Records ``report["confirmation"]``, ``report["confirmations"]`` (each
        one tried: trial, ratio, CI, held) and ``report["confirmed_trial"]``, and a note per failure."""
        tries = [(t, {tu: p for tu, p in cfg.items() if not p.is_baseline}, b) for t, cfg, b in reversed(accepted)]
        tries = [x for x in tries if x[1]][:1 + CONFIRM_FALLBACKS]
        first, done = None, []
        for i, (trial, winner, binary) in enumerate(tries):
            what = "the winner" if i == 0 else f"the incumbent after trial {trial}"
            then = (f"; confirming the incumbent after trial {tries[i + 1][0]}" if i + 1 < len(tries)
                    else "; nothing stored")
            # A fallback is one more chance for noise to pass: at FALLBACK_ALPHA_SHARE of the error rate.
            level = self.settings["confidence"]
            level = level if i == 0 else 1 - (1 - level) * FALLBACK_ALPHA_SHARE
            try:
                cmp = compare(self._timed(base_bin, self.run_timeout), self._timed(binary, self.run_timeout),
                              min_rounds=self.settings["confirm_rounds"], max_rounds=self.settings["confirm_rounds"],
                              warmup=1, confidence=level, seed=self.seed + 7919 + i)
            except _WrongOnRepeat as e:
                # (verify() passed during the search: output that changes between runs of one binary)
                done.append({"trial": trial, "held": False, "reason": f"output changed on a repeat run: {e}"})
                report["notes"].append(f"{what} printed different output on a confirmation run ({e}){then}")
                continue
            first = first or cmp
            done.append({"trial": trial, "held": cmp.significant, "ratio": cmp.to_dict()["ratio"],
                         "ci": [cmp.to_dict()["ci_low"], cmp.to_dict()["ci_high"]]})
            report["confirmations"] = done
            if cmp.significant:
                report["confirmation"] = cmp.to_dict()
                report["confirmed_trial"] = trial
                if i:
                    report["notes"].append(f"{what} held on confirmation (ratio {cmp.ratio:.3f}, CI "
                                           f"{ci_text(cmp.ci_low, cmp.ci_high)}): stored instead; the trials "
                                           f"accepted after trial {trial} are dropped")
                return winner, cmp
            report["notes"].append(f"{what} did not hold on confirmation (ratio {cmp.ratio:.3f}, CI "
                                   f"{ci_text(cmp.ci_low, cmp.ci_high)}){then}")
        report["confirmations"] = done
        if first is not None:
            report["confirmation"] = first.to_dict()
        return {}, first

    def _bar(self):
        if not self.progress:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        # disable=None: no bar when stderr is not a terminal (CI logs, pipes).
        return tqdm(total=self.budget, desc="autopass-cc tune", unit="trial", file=sys.stderr, leave=True,
                    disable=None)

    def _hot_tus(self, base_bin: Linked, report: dict) -> list[TUInfo]:
        prog = self.program
        infos = {t.tu_id: TUInfo(t.tu_id, t.rel, shared=t.image > 0) for t in prog.tus}
        mode = self.settings["profile"]
        profiled = False
        limit = max(CALLGRIND_MIN_S, CALLGRIND_FACTOR * self.report["baseline"]["seconds"])
        seconds = self.report["baseline"]["seconds"]
        timed_out = self._callgrind_timed_out(seconds)
        if mode == "auto" and self.settings["pgo"] and (limit > CALLGRIND_MAX_S or timed_out):
            if timed_out:
                report["notes"].append(f"callgrind timed out on this run command in an earlier session (after "
                                       f"{timed_out:.0f} s); hot TUs from an instrumentation profile of every TU")
            else:
                report["notes"].append(f"the run takes {seconds:.1f} s: too long for callgrind (it would get "
                                       f"{limit:.0f} s); hot TUs from an instrumentation profile of every TU")
            mode = "instrumentation"
            profiled = self._hot_from_instrumentation(infos, report)
        if mode in ("auto", "callgrind"):
            try:
                self._phase(f"finding the hot TUs: one run under callgrind (at most {limit:.0f} s)")
                from .profile import hot_functions_callgrind, without_debug_info
                self.swap.install(Linked(without_debug_info(base_bin.files, os.path.join(self.dir, "profile", "bin"))))
                executed: set = set()
                shares = hot_functions_callgrind(self.settings["run"], self.project,
                                                 timeout_s=limit,
                                                 workdir=os.path.join(self.dir, "profile"), executed=executed)
                self._check_executed(executed)
                profiled = self._weigh(infos, shares)
            except SessionError:
                raise
            except Exception as e:
                from .profile import CallgrindTimeout
                if isinstance(e, CallgrindTimeout):
                    self._remember_callgrind_timeout(seconds, limit)
                if mode == "auto" and self.settings["pgo"]:
                    report["notes"].append(f"profiling failed ({type(e).__name__}: {e}); hot TUs from an "
                                           "instrumentation profile of every TU instead")
                    why = "timed out" if isinstance(e, CallgrindTimeout) else "failed"
                    self._phase(f"callgrind could not profile the run ({why}); weighing the TUs by an "
                                "instrumentation profile instead")
                    profiled = self._hot_from_instrumentation(infos, report)
                else:
                    report["notes"].append(f"profiling failed ({type(e).__name__}: {e}); tuning every TU")
        ordered = sorted(infos.values(), key=lambda i: -(i.weight or 0.0))
        share = sum(i.weight or 0.0 for i in ordered)
        self._target_share = share if profiled else None
        if profiled and share < 0.05:
            report["notes"].append(f"the run spends {share:.1%} of its instructions in the target's TUs "
                                   "(the rest in system libraries or code not built through autopass-cc): "
                                   "little can be gained")
        if profiled:
            ordered = [i for i in ordered if (i.weight or 0.0) >= 0.02] or ordered[:1]
        ordered = ordered[: max(1, int(self.settings["max_tus"]))]
        report["profiled"] = profiled
        self._evidence(ordered, report)
        return ordered

    def _callgrind_file(self) -> str:
        return os.path.join(state_dir(self.project), "callgrind-timeout.json")

    def _callgrind_timed_out(self, seconds: float) -> float | None:
        """The seconds callgrind was given when it last timed out on this run command, if the run
        is not much faster now (at most 30% less time), else None: a later session does not spend
        that time again (seen on pixman: 116 s lost in each of two sessions)."""
        try:
            with open(self._callgrind_file(), encoding="utf-8") as f:
                got = json.load(f)
            if got.get("run") == self.settings["run"] and seconds >= 0.7 * float(got["seconds"]):
                return float(got["limit"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return None

    def _remember_callgrind_timeout(self, seconds: float, limit: float) -> None:
        try:
            with open(self._callgrind_file(), "w", encoding="utf-8") as f:
                json.dump({"run": self.settings["run"], "seconds": seconds, "limit": limit}, f)
        except OSError:
            pass

    def _phase(self, message: str) -> None:
        """One line saying what the session does now (with ``progress``), so that its first minutes
        (baseline runs, profiling, evidence) are not silent, in a terminal or a log."""
        if self.progress:
            self.note(message)

    def _hot_from_instrumentation(self, infos: dict, report: dict) -> bool:
        """When callgrind cannot profile the run (too slow for its timeout: it runs programs
        20-100x slower; or valgrind is missing or fails): record the session's instrumentation
        profile with every TU instrumented -- one run at about the program's own speed -- and
        weight each TU by its functions' counter sums (profile.hot_functions_profdata: executions
        of counted edges, rougher than callgrind's instructions).  That profile then serves the
        profile-guided candidates too.  Fills ``infos`` (TU id -> TUInfo) in place; True when some
        TU got a weight.  Seen on real projects: jq 1.6 and expat 2.5.0 with 2.4 s runs timed
        out under callgrind after 74-143 s, and their sessions tuned every TU blind."""
        from ..pipeline import profile_path
        from .profile import hot_functions_profdata
        digest = self._record_profile(list(infos.values()), report)
        if digest is None:
            return False
        self._early_profile = digest
        try:
            shares = hot_functions_profdata([profile_path(digest)], os.path.join(self.dir, "profile", "counts"))
        except Exception as e:
            report["notes"].append(f"no hot TUs from the instrumentation profile ({type(e).__name__}: {e}); "
                                   "tuning every TU")
            return False
        return self._weigh(infos, shares)

    def _weigh(self, infos: dict, shares: dict) -> bool:
        """Give each TU of ``infos`` (TU id -> TUInfo, filled in place) its share of the run and
        its hot functions, from per-function ``shares`` (name -> 0..1) mapped to the objects
        built with the user's flags (profile.hot_tus).  True when some TU got a weight."""
        from .profile import hot_tus
        prog = self.program
        objects = {t.tu_id: prog.object_for(t, Pipeline()) for t in prog.tus}
        for tu_id, share, funcs in hot_tus(shares, objects):
            infos[tu_id].weight = share
            infos[tu_id].hot_functions = funcs
        return any(i.weight for i in infos.values())

    def _record_profile(self, tus: list[TUInfo], report: dict) -> str | None:
        """Record an instrumentation profile of the run for the hot TUs (tuning/pgo.py); its
        SHA-256, or None (with a note saying why) when none could be recorded."""
        from .pgo import NotRecorded, record
        self._phase(f"recording an instrumentation profile: {len(tus)} TU(s) built -fprofile-generate, one run")

        def check(r):
            v = verify(self.reference, r)
            return None if v.ok else v.reason
        try:
            rec = record(self.program, [t.tu_id for t in tus],
                         lambda linked, env: self._run(linked, float(self.settings["run_timeout"]), env),
                         check, os.path.join(self.dir, "profile", "pgo"))
        except NotRecorded as e:
            report["notes"].append(f"no instrumentation profile: {e}; no profile-guided candidates")
            return None
        except Exception as e:  # an optional step: it never ends the session
            report["notes"].append(f"no instrumentation profile ({type(e).__name__}: {e}); "
                                   "no profile-guided candidates")
            return None
        report["pgo"] = rec.to_dict()
        return rec.digest

    def _check_executed(self, executed: set) -> None:
        """Raise SessionError when the profiled run executed user code (``executed``: paths of the
        non-system objects callgrind saw run) but none of the files the session swaps: every
        trial would time the same untouched program and report noise as verdicts (seen on zstd,
        whose Makefile links obj/conf_<hash>/zstd and copies it to programs/zstd)."""
        mine = {os.path.realpath(i.path) for i in self.program.images}
        ran = {os.path.realpath(p) for p in executed}
        if ran and not ran & mine:
            shown = ", ".join(sorted(os.path.relpath(p, self.project) if p.startswith(self.project + os.sep) else p
                                     for p in ran)[:3])
            raise SessionError(f"the run command never executes {os.path.relpath(self.program.target, self.project)} "
                               f"(callgrind saw it run {shown}); set target to the program it runs "
                               "(autopass-cc init --force --run CMD --target PATH)")
        if ran:
            for img in self.program.images[1:]:
                if os.path.realpath(img.path) not in ran:
                    self.report["notes"].append(
                        f"the run never ran code of {os.path.relpath(img.path, self.project)} (another copy of the "
                        "library may be loaded instead: LD_LIBRARY_PATH, rpath); its TUs are not tuned")

    def _evidence(self, tus: list[TUInfo], report: dict) -> None:
        try:
            from .evidence import collect
        except ImportError:
            return
        if tus:
            self._phase("hot TUs: " + ", ".join(f"{self.program.tu(i.tu_id).rel}"
                                                + (f" {i.weight:.0%}" if i.weight else "") for i in tus[:8])
                        + "; reading their optimization remarks and IR")
        for info in tus:
            t = self.program.tu(info.tu_id)
            try:
                info.evidence = collect(t.compiler, t.args, t.cwd, Pipeline(),
                                        os.path.join(self.dir, "evidence", str(t.index)))
            except Exception as e:
                report["notes"].append(f"no evidence for {t.rel} ({type(e).__name__}: {e})")

    def _validate(self, proposal: Proposal) -> str | None:
        for tu_id, p in proposal.changes.items():
            if not isinstance(p, Pipeline):
                return "refused: not a Pipeline"
            if not any(t.tu_id == tu_id for t in self.program.tus):
                return f"refused: unknown TU {tu_id!r}"
            try:
                validate(p, self.policy)
            except PipelineError as e:
                return f"refused ({e.reason}): {e}"
            if p.passes is not None:
                err = _check_passes(p.passes)
                if err:
                    return f"refused (bad-passes): opt-19 rejects the pass pipeline: {err}"
        return None

    def _trial(self, n: int, proposal: Proposal, config: dict, incumbent: dict, inc_bin: Linked,
               measured: dict) -> tuple[TrialResult, str | None]:
        """Validate, build, verify and measure one proposal: ``(result, candidate binary or None)``.
        Same-binary, without a link, when every changed TU's object equals the incumbent's
        (:meth:`_same_objects`); else ``measured`` maps binary SHA-256 -> which trial built it
        (never time the same binary twice)."""
        refusal = self._validate(proposal)
        if refusal:
            return TrialResult(n, proposal, "failed", refusal), None
        self._touched.update(proposal.changes)
        built = time.monotonic()
        try:
            if self._same_objects(config, incumbent):
                return TrialResult(n, proposal, "same-binary",
                                   "every changed object is byte-identical to the incumbent's; not linked or timed"), None
            cand_bin = self.program.link_config(config)
        except BuildFailed as e:
            return TrialResult(n, proposal, "failed", str(e)), None
        built = time.monotonic() - built
        h = cand_bin.digest()
        if h in measured:
            return TrialResult(n, proposal, "same-binary", f"byte-identical to the {measured[h]} binary; not timed"), None
        measured[h] = f"trial {n}"
        r = self._run(cand_bin, self.run_timeout)
        v = verify(self.reference, r)
        if not v.ok:
            reason = ("wrong output: " + v.reason) if "differs" in v.reason else v.reason
            return TrialResult(n, proposal, "failed", reason, diagnosis=self._diagnose(proposal, incumbent)), None
        gain = float(self.settings["min_gain"])

        def rounds(warmup: int):
            return compare(self._timed(inc_bin, self.run_timeout), self._timed(cand_bin, self.run_timeout),
                           min_rounds=self.settings["min_rounds"], max_rounds=self.settings["max_rounds"],
                           warmup=warmup, confidence=self.settings["confidence"], seed=self.seed + n,
                           negligible=2 * gain)
        try:
            cmp = rounds(1)
            if promising(cmp):  # a likely gain the noise hid: more rounds before dropping it
                cmp = pooled(cmp, rounds(0), seed=self.seed + n)
        except _WrongOnRepeat as e:
            return TrialResult(n, proposal, "failed", f"output changed on a repeat run: {e}"), None
        # Accepted only when the interval excludes 1 and the gain is worth a cache entry.
        accepted = cmp.significant and cmp.ratio >= 1.0 + gain
        res = TrialResult(n, proposal, cmp.verdict, ratio=cmp.ratio, ci=(cmp.ci_low, cmp.ci_high),
                          accepted=accepted, noise=cmp.noise, rounds=cmp.rounds, build_seconds=round(built, 3))
        if cmp.verdict == "slower":
            res.diagnosis = self._diagnose(proposal, incumbent)
        return res, cand_bin

    def _same_objects(self, config: dict, incumbent: dict) -> bool:
        """True when, for every TU whose pipeline differs between ``config`` and ``incumbent``, the
        two objects are byte-identical (SHA-256), so the relink would rebuild the incumbent's binary.
        Compiles the candidate's objects (cached by Program, so the link that follows reuses them);
        raises BuildFailed.  Whole-file hashes are safe across scratch paths: clang-19 -O3 writes
        the same bytes to different ``-o`` paths with -g0 and -g (DWARF names the source and the
        cwd, not the object); -gsplit-dwarf names the .dwo beside the object, so those differ and
        the binary check after the link decides, as before."""
        for t in self.program.tus:
            cand, inc = config.get(t.tu_id, Pipeline()), incumbent.get(t.tu_id, Pipeline())
            if cand.digest() == inc.digest():
                continue
            if self._obj_digest(t, cand) != self._obj_digest(t, inc):
                return False
        return True

    def _obj_digest(self, t, pipeline: Pipeline) -> str:
        path = self.program.object_for(t, pipeline)
        if path not in self._obj_digests:
            self._obj_digests[path] = file_digest(path)
        return self._obj_digests[path]

    def _diagnose(self, proposal: Proposal, incumbent: dict) -> dict | None:
        try:
            from .diagnose import blamed_edits, diagnose
            from .evidence import collect
        except ImportError:
            return None
        out = {}
        for tu_id, p in proposal.changes.items():
            t = self.program.tu(tu_id)
            info = next((i for i in self.tus if i.tu_id == tu_id), None)
            hot = [f for f, _ in (info.hot_functions if info else [])]
            try:
                # A diagnosis costs compiles with optimization records, slower than plain ones: at
                # most twice the trial's own compile limit, and the trial's limit alone when a
                # profile is used (LLVM then computes each remark's hotness, rebuilding block
                # frequencies per loop: sqlite3.c took over 18 minutes instead of ~30 s).  The
                # incumbent's evidence is collected once per incumbent pipeline.
                inc_p = incumbent.get(tu_id, Pipeline())
                limit = self.program.compile_limit(t)
                kw = {}
                if limit:
                    kw["timeout_s"] = min(EVIDENCE_LIMIT_S, limit if (p.profile or inc_p.profile) else 2 * limit)
                inc_key = (tu_id, inc_p.digest())
                if inc_key not in self._inc_evidence:
                    try:
                        self._inc_evidence[inc_key] = collect(t.compiler, t.args, t.cwd, inc_p, os.path.join(
                            self.dir, "evidence", f"{t.index}-{inc_p.digest()}-inc"), **kw)
                    except Exception as e:
                        self._inc_evidence[inc_key] = e  # (failed once: not tried again)
                inc_ev = self._inc_evidence[inc_key]
                if isinstance(inc_ev, Exception):
                    raise inc_ev
                cand_ev = collect(t.compiler, t.args, t.cwd, p, os.path.join(self.dir, "evidence", f"{t.index}-{p.digest()}"),
                                  **kw)
                diag = diagnose(inc_ev, cand_ev, hot)
                diag["blamed"] = blamed_edits(diag, proposal.edits)
                out[t.rel] = diag
            except Exception as e:
                out[t.rel] = {"summary": f"no diagnosis ({type(e).__name__}: {e})", "blamed": []}
        blamed = sorted({b for d in out.values() for b in d.get("blamed", [])})
        return {"by_tu": out, "blamed": blamed,
                "summary": "; ".join(f"{k}: {v.get('summary', '')}" for k, v in out.items())}

    def _tried_before(self, baseline_sha: str) -> set:
        """Digests of the configurations earlier sessions of this project measured, and did not
        accept, on a baseline with the same bytes (same sources, flags and compiler): a new session
        spends its budget on something else.  Only sessions that used this cache directory and
        ended after its last ``cache clear`` count (the README's promise: clearing starts over).
        Reports without digests (older versions) give none."""
        import glob
        from ..store import CLEARED
        cache = cache_dir()
        try:
            cleared = os.path.getmtime(os.path.join(cache, CLEARED))
        except OSError:
            cleared = 0.0
        out: set = set()
        for path in glob.glob(os.path.join(state_dir(self.project), "sessions", "*", "session.json")):
            if os.path.dirname(path) == self.dir:
                continue
            try:
                if os.path.getmtime(path) <= cleared:
                    continue
                with open(path, encoding="utf-8") as f:
                    old = json.load(f)
            except (OSError, ValueError):
                continue
            if (old.get("baseline") or {}).get("binary_sha256") != baseline_sha or old.get("cache", cache) != cache:
                continue
            out |= {t["config"] for t in old.get("trials", []) if t.get("config") and not t.get("accepted")}
        return out

    def _trial_dict(self, r: TrialResult) -> dict:
        return {"trial": r.trial, "agent": r.proposal.agent, "edits": [str(e) for e in r.proposal.edits],
                "rationale": r.proposal.rationale,
                "changes": {self.program.tu(tu).rel if any(t.tu_id == tu for t in self.program.tus) else tu:
                            p.to_dict() if isinstance(p, Pipeline) else repr(p) for tu, p in r.proposal.changes.items()},
                "verdict": r.verdict, "reason": r.reason, "ratio": r.ratio, "ci": list(r.ci) if r.ci else None,
                "accepted": r.accepted, "noise": r.noise, "rounds": r.rounds,
                "diagnosis": r.diagnosis, "seconds": r.seconds, "build_seconds": r.build_seconds}

    def _store(self, winner: dict, tus: list[TUInfo], report: dict, ident: dict) -> list[dict]:
        """Cache every TU of the target: the winner's pipeline where it has one, else the baseline
        (so tuning on link does not start again for TUs already examined) -- except over an entry an
        earlier session won with, which stays."""
        store = open_store(size_limit=self.settings["cache_size"])
        tuned_ids = {t.tu_id for t in tus}
        stored = []
        try:
            for t in self.program.tus:
                key = tu_cache_key(t, ident, self.project)
                if t.tu_id not in winner:
                    # A pipeline an earlier session confirmed for this exact TU stays: a session
                    # that finds nothing (noise, another budget) does not undo a measured win.
                    old = store.get_tuned(key.digest)
                    if old and (old.get("provenance") or {}).get("status") == "won":
                        stored.append({"source": t.rel, "key": key.digest,
                                       "pipeline": Pipeline.from_dict(old["pipeline"]).describe(),
                                       "status": f"kept: won in session {old['provenance'].get('session')}"})
                        continue
                pipe = winner.get(t.tu_id, Pipeline())
                why = ("won" if t.tu_id in winner else
                       "tuned; no significant gain over the user's flags" if t.tu_id in self._touched else
                       "hot, but no trial changed it within the budget" if t.tu_id in tuned_ids else
                       "not hot enough to tune")
                entry = {"pipeline": pipe.to_dict(), "source": t.rel, "material": key.material,
                         "provenance": {"session": self.id, "project": self.project, "status": why,
                                        "speedup": report["speedup"] if t.tu_id in winner else None,
                                        "speedup_ci": report["speedup_ci"] if t.tu_id in winner else None,
                                        "date": datetime.datetime.now().isoformat(timespec="seconds"),
                                        "budget": self.budget, "proposer": report.get("proposer"),
                                        "edits": pipe.describe() if not pipe.is_baseline else []}}
                store.put_tuned(key.digest, key.tu_id, entry)
                stored.append({"source": t.rel, "key": key.digest, "pipeline": pipe.describe(), "status": why})
        finally:
            store.close()
        return stored


class _WrongOnRepeat(Exception):
    pass


def tu_cache_key(t, ident: dict, project: str):
    """The CacheKey the wrapper will compute for this TU's recorded compile (re-preprocesses it)."""
    pre = subprocess.run([t.compiler] + cachekey.preprocess_args(t.inv), cwd=t.cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if pre.returncode != 0:
        raise SessionError(f"{t.rel} no longer preprocesses; rebuild the project and tune again")
    native = host_cpu(t.compiler) if t.inv.uses_native else None
    return cachekey.compute(t.inv, ident, t.cwd, pre.stdout, native_cpu=native, project=project)


_PASSES_OK: dict[str, str | None] = {}


def _check_passes(passes: str) -> str | None:
    """None when ``opt-19 -passes=...`` accepts the string on an empty module, else its error."""
    if passes not in _PASSES_OK:
        try:
            from .rules import validate_passes
            _PASSES_OK[passes] = validate_passes(passes)
        except ImportError:
            from ..toolchain import llvm_tool
            r = subprocess.run([llvm_tool("opt"), f"-passes={passes}", "-disable-output"], input=b"",
                               capture_output=True)
            _PASSES_OK[passes] = None if r.returncode == 0 else r.stderr.decode(errors="replace").strip()[:300]
    return _PASSES_OK[passes]
