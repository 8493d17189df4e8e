"""The ask/tell interface every proposer shares (offline search, random search, LLM agents).

The session owns the loop (ARCHITECTURE.md, data flow): it calls ``ask(state)`` for a Proposal,
validates every Pipeline in it against the allowlist (a refusal is a failed trial with its reason,
never a command line), builds, verifies and measures it, then calls ``tell(result)``.  Keeping the
incumbent or rolling back to it is the session's rule, not the proposer's.

A *configuration* is a mapping TU id -> Pipeline for the TUs being tuned; a Proposal changes the
pipelines of one or more TUs relative to the incumbent configuration.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from ...pipeline import Pipeline, Policy


@dataclass(frozen=True)
class Edit:
    """One change to a Pipeline: ``kind`` is ``"knob"``, ``"flag"``, ``"opt_level"``, ``"passes"``
    or ``"profile"``; ``name`` is the knob or flag family (unused for the others); ``value`` the
    new value (None removes it; for a profile, the SHA-256 of a recorded one).  ``rationale`` says why, ``source`` where the rule comes from."""
    kind: str
    name: str
    value: object
    rationale: str = ""
    source: str = ""

    def apply(self, p: Pipeline) -> Pipeline:
        """The pipeline with this edit made; raises PipelineError for a bad knob value.  A profile
        and a passes string exclude each other (pipeline.validate): setting one drops the other,
        so an edit moves a TU between clang's pipeline with the profile and the split route."""
        if self.kind == "knob":
            return p.with_knob(self.name, self.value)
        if self.kind == "flag":
            return p.with_flag(self.name, self.value)
        if self.kind == "opt_level":
            return p.with_opt_level(self.value)
        if self.kind == "passes":
            return p.with_passes(self.value).with_profile(None if self.value else p.profile)
        if self.kind == "profile":
            return p.with_profile(self.value).with_passes(None if self.value else p.passes)
        raise ValueError(f"unknown edit kind {self.kind!r}")

    def __str__(self) -> str:
        if self.kind == "passes" and self.value:
            # The whole O3 string is kilobytes long: name the edit by what it changes.
            import hashlib
            label = self.rationale.split(" (")[0][:70] if self.rationale else ""
            return f"passes[{label or hashlib.sha256(str(self.value).encode()).hexdigest()[:8]}]"
        if self.kind == "profile":
            return f"profile={str(self.value)[:12]}" if self.value else "profile=none"
        if self.kind in ("opt_level", "passes"):
            return f"{self.kind}={'default' if self.value is None else self.value}"
        # None: the knob or flag family back at clang's default (no option on the command line)
        return f"{self.name}={'default' if self.value is None else self.value}"


def uniform_edit(rng, with_default: bool = False) -> Edit:
    """One edit drawn uniformly (``rng``: a random.Random): with probability 3/4 a knob of
    pipeline.KNOBS with any value in its range, else a flag family of pipeline.FLAG_FAMILIES at
    one of its settings (or, with ``with_default``, also at clang's default: value None)."""
    from ...pipeline import FLAG_FAMILIES, KNOBS
    if rng.random() < 0.75:
        knob = KNOBS[rng.choice(sorted(KNOBS))]
        return Edit("knob", knob.name, rng.choice([True, False]) if knob.kind == "bool" else rng.randint(knob.lo, knob.hi))
    fam = FLAG_FAMILIES[rng.choice(sorted(FLAG_FAMILIES))]
    return Edit("flag", fam.name, rng.choice(sorted(fam.choices) + ([None] if with_default else [])))


@dataclass
class TUInfo:
    """What a proposer knows of one TU: ``tu_id``; ``source`` (path relative to the project);
    ``weight``: share of the run's time in this TU's functions (0..1), None without a profile;
    ``hot_functions``: ``[(name, share)]`` hottest first; ``evidence``: the TU's evidence summary
    (tuning/evidence.py: a dict) or None; ``shared``: linked into a shared library."""
    tu_id: str
    source: str
    weight: float | None = None
    hot_functions: list = field(default_factory=list)
    evidence: dict | None = None
    shared: bool = False


@dataclass
class Proposal:
    """A candidate: ``changes`` maps TU id -> the full new Pipeline for that TU (other TUs keep the
    incumbent's).  ``edits`` are human-readable, ``agent`` names who proposed it (rule name,
    "random", "planner" ...)."""
    changes: dict
    rationale: str = ""
    agent: str = ""
    edits: list = field(default_factory=list)


@dataclass
class TrialResult:
    """What came of one Proposal.

    ``verdict``: ``"faster"`` (accepted: the CI of incumbent/candidate excludes 1 above),
    ``"slower"``, ``"inconclusive"``, ``"failed"`` (``reason`` says why: refused, compile error,
    link error, crash, timeout, wrong output), or ``"same-binary"`` (every changed object
    byte-identical to the incumbent's, or the binary byte-identical to one already measured, so
    not timed again; not charged to the budget).  ``ratio``: median time of incumbent / candidate (>1 is
    faster), with ``ci`` (low, high), measured over ``rounds`` interleaved rounds with relative
    ``noise`` (median absolute deviation / median).  ``diagnosis``: regression diagnosis
    (tuning/diagnose.py); ``seconds``: wall time the trial took, ``build_seconds`` of it compiling
    and linking the candidate."""
    trial: int
    proposal: Proposal
    verdict: str
    reason: str = ""
    ratio: float | None = None
    ci: tuple | None = None
    accepted: bool = False
    diagnosis: dict | None = None
    seconds: float = 0.0
    noise: float | None = None
    rounds: int | None = None
    build_seconds: float = 0.0


@dataclass
class SearchState:
    """Read-only view handed to ``ask``: ``tus`` (hottest first), ``incumbent`` (TU id ->
    Pipeline), ``history`` (every TrialResult so far), ``policy`` (what may be proposed),
    ``trials_left`` (int), ``tried`` (set of configuration digests already built), ``profile``
    (SHA-256 of the instrumentation profile the session recorded of the run, tuning/pgo.py, which
    an Edit of kind ``"profile"`` may name; None without one)."""
    tus: list
    incumbent: dict
    history: list
    policy: Policy
    trials_left: int
    tried: set = field(default_factory=set)
    profile: str | None = None


class Proposer(abc.ABC):
    """A source of candidate configurations.  Subclasses set ``name`` and implement ``ask``."""
    name = "base"

    def __init__(self, seed: int = 0):
        self.seed = seed

    @abc.abstractmethod
    def ask(self, state: SearchState) -> Proposal | None:
        """The next candidate, or None when the proposer has nothing more to try."""

    def tell(self, result: TrialResult) -> None:
        """Learn from a finished trial (default: nothing; the history is in the next state)."""

    def close(self) -> None:
        """Release resources (e.g. an HTTP client); called once at the end of a session."""


def config_digest(config: dict) -> str:
    """Stable digest of a configuration (TU id -> Pipeline), for de-duplication."""
    import hashlib
    text = "|".join(f"{tu}={config[tu].canonical_json()}" for tu in sorted(config) if not config[tu].is_baseline)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
