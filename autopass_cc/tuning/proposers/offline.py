"""The offline, evidence-guided proposer: no model needed.

Five phases, each over the TUs hottest first (``state.tus`` is ordered by profile share):

0. **Profile-guided optimization**, when the session recorded an instrumentation profile of the
   run (``state.profile``, tuning/pgo.py): one trial with every hot TU compiled with it.  It is the
   only edit that sees which branches this run takes and how often, so it goes first; when it
   is not accepted and several TUs are hot, PGO of the hottest TU alone and of the next one
   are queued among the program-wide moves (one TU can lose what another gains: whole-program
   PGO made examples/demo ~1.35x slower, tuning/pgo.py).
1. **Evidence rules** (tuning/rules.py): edits derived from the TU's optimization remarks and IR
   statistics (a hot loop not vectorized by the cost model -> vectorizer knobs, a hot call site
   not inlined as too costly -> inline threshold, ...), in one queue over all hot TUs ordered by
   score (rule strength x the profile share of the functions it concerns); rules scoring below
   WEAK_SCORE are tried after phases 2 and 3.
2. **Pass pipelines**: edited versions of the ``default<O3>`` pass pipeline (tuning/rules.py:
   parameters of loop-unroll / loop-vectorize changed, passes dropped, repeated or inserted; each
   accepted by opt-19 before it is proposed) for the hottest TU and for the next one when it holds
   at least PASS_EDIT_SHARE of the profile (at most PASS_EDIT_TUS TUs; their queues interleaved,
   the hottest first), alternating with phase 3.  Not for a TU whose incumbent uses the profile:
   the split route cannot apply it (pipeline.validate).
3. **Program-wide moves**: a short list of edits that often pay off at -O3 (ordered by how often
   they won in the AutoPass paper's ablation and in our own runs), tried on all hot TUs at once so
   one trial covers the program (one of them, direct calls in shared-library code, only on the
   TUs linked into a shared library).
4. **Local search**: hill climbing around the incumbent -- change one knob to a neighbouring value
   (halve, double, default) or toggle one flag or the recorded profile, in one TU picked with probability proportional to
   its weight -- with a random multi-edit restart after ``patience`` trials without a gain.

Every EXPLORE_EVERY-th trial that is built and timed, from the first phase on, is instead a
**perturbation** of the incumbent: one to three edits drawn uniformly from the whole allowlist
(any value in a knob's range, not a neighbour) on the hot TUs, on top of what already won there
(the profile included).  No rule predicts some gains: a session on Lua 5.4's interpreter (session
12 benchmarks) won 1.12x with random search against 1.07x for the recorded profile alone, and the
difference was GVN sinking in lvm.c (+2%, and -2% without the profile) and loop alignment in ldo.c;
random search found the combination because it draws several edits over several TUs at once.

Edits a regression diagnosis blamed (``TrialResult.diagnosis["blamed"]``) and edits that failed
(wrong output, compile error) are not proposed again for that TU.
"""

from __future__ import annotations

import random

from ...errors import PipelineError
from ...pipeline import FLAG_FAMILIES, KNOBS, Pipeline, validate
from .base import Edit, Proposal, Proposer, SearchState, config_digest, uniform_edit

#: The program-wide move that only applies to TUs linked into a shared library.
SHARED_ONLY = "shared-library code: direct calls (no semantic interposition, no PLT)"

#: Program-wide moves, most promising first.  Each is a list of edits applied together.
GENERIC_MOVES: list[tuple[str, list[Edit]]] = [
    ("O2 instead of O3 (less code growth)", [Edit("opt_level", "", "O2")]),
    # Code in a shared library calls its own global functions through the PLT and treats them
    # as interposable (ELF default; clang's -fno-semantic-interposition / -fno-plt docs): direct
    # calls instead.  Only a program that interposes the library's own symbols sees a difference.
    (SHARED_ONLY, [Edit("flag", "semantic-interposition", "off"), Edit("flag", "plt", "off")]),
    ("more unrolling", [Edit("knob", "unroll-threshold", 1000), Edit("knob", "unroll-allow-partial", True)]),
    ("runtime unrolling", [Edit("knob", "unroll-runtime", True), Edit("knob", "unroll-max-count", 4)]),
    ("more inlining", [Edit("knob", "inline-threshold", 800)]),
    # Where the linker puts a hot loop can change its speed by a third: examples/demo's VM loop ran
    # 1.35x slower when PGO of *another* TU moved that TU's functions to .text.hot ahead of it, and
    # at every one of three placements measured within 3% of -O3 once its functions and loops were
    # aligned to 64 bytes (the cache line).  Mytkowicz et al., "Producing Wrong Data Without Doing
    # Anything Obviously Wrong!" (ASPLOS 2009) on such layout effects.
    ("functions and loops aligned to 64 bytes (placement-independent hot loops)",
     [Edit("flag", "align-functions", "a64"), Edit("flag", "align-loops", "a64")]),
    ("no vector interleaving", [Edit("knob", "force-vector-interleave", 1)]),
    ("DFA jump threading (state machines, interpreters)", [Edit("knob", "enable-dfa-jump-thread", True)]),
    ("loop interchange + unroll-and-jam", [Edit("knob", "enable-loopinterchange", True),
                                           Edit("knob", "enable-unroll-and-jam", True)]),
    ("less inlining", [Edit("knob", "inline-threshold", 100)]),
    ("no SLP vectorization", [Edit("flag", "slp-vectorize", "off")]),
    ("no cmov conversion", [Edit("knob", "x86-cmov-converter", False)]),
    ("interleaved memory accesses", [Edit("knob", "enable-interleaved-mem-accesses", True)]),
    ("wider interleave", [Edit("knob", "force-vector-interleave", 4)]),
    ("GVN hoist + sink", [Edit("knob", "enable-gvn-hoist", True), Edit("knob", "enable-gvn-sink", True)]),
    ("no math errno", [Edit("flag", "math-errno", "off")]),
    ("tune for this CPU", [Edit("flag", "mtune", "native")]),
    ("target this CPU", [Edit("flag", "march", "native")]),
]

#: Rules scoring below this (rule strength x share of the run in the functions concerned, both 0..1)
#: wait until after the program-wide moves: a strong rule on a function holding 5% of the run
#: scores about 0.04.
WEAK_SCORE = 0.05

#: Pass-pipeline edits (phase 2) go to the hottest TU and to each next TU holding at least this
#: share of the run (profile share, 0..1), at most PASS_EDIT_TUS of them.  rules.pass_pipeline_edits
#: gives 10 edits per TU with LLVM 19, and an edited pipeline usually changes the object (a measured
#: trial), so two TUs already take 20 trials of the default budget of 24; a TU holding less than a
#: quarter of the run can gain little from a whole-pipeline edit.
PASS_EDIT_SHARE = 0.25
PASS_EDIT_TUS = 2

#: Every this many trials that consume the budget (built and timed, or failed), one is a
#: perturbation of the incumbent (module docstring): 4 of a budget of 16.
EXPLORE_EVERY = 4
#: A perturbation edits the TUs holding at least this share of the run (0..1; at least the hottest).
EXPLORE_SHARE = 0.05

#: Values local search tries for integer knobs besides halving/doubling.
_EXTRA_VALUES = {
    "force-vector-width": [1, 2, 4, 8, 16], "force-vector-interleave": [1, 2, 4, 8],
    "unroll-count": [2, 4, 8], "unroll-max-count": [2, 4, 8, 16],
    "slp-threshold": [-6, -3, 3], "vectorizer-min-trip-count": [4, 8, 32],
}


def neighbour_values(name: str, current) -> list:
    """Values next to ``current`` for a knob: toggle for bools; half, double, default and a few
    landmark values for integers, all clipped to the knob's allowlisted range."""
    knob = KNOBS[name]
    if knob.kind == "bool":
        cur = str(current).lower() == "true" if current is not None else bool(knob.default)
        return [not cur]
    cur = int(current) if current is not None else int(knob.default)
    vals = {cur // 2, cur * 2 if cur else 4, int(knob.default), cur + max(1, abs(cur) // 4), cur - max(1, abs(cur) // 4)}
    vals.update(_EXTRA_VALUES.get(name, []))
    return sorted(v for v in vals if knob.lo <= v <= knob.hi and v != cur)


def _blamed(history, tu_id: str) -> set[str]:
    out = set()
    for r in history:
        if tu_id in r.proposal.changes and (r.verdict == "failed" or (r.diagnosis or {}).get("blamed")):
            out.update((r.diagnosis or {}).get("blamed") or [])
            if r.verdict == "failed" and len(r.proposal.edits) == 1:
                out.add(str(r.proposal.edits[0]))
    return out


def _edited(state: SearchState, tu_id: str, n: int, draw, edits: list) -> Pipeline:
    """The incumbent of ``tu_id`` with ``n`` edits from ``draw(pipeline) -> Edit`` made in turn,
    skipping any that a diagnosis blamed or that failed there, or that do not apply; appends the
    edits made to ``edits``."""
    p = state.incumbent.get(tu_id, Pipeline())
    blamed = _blamed(state.history, tu_id)
    for _ in range(n):
        e = draw(p)
        if str(e) in blamed:
            continue
        try:
            p = e.apply(p)
        except (PipelineError, ValueError):
            continue
        edits.append(e)
    return p


class OfflineProposer(Proposer):
    """Rules, then program-wide moves, then hill climbing (module docstring).  ``seed`` makes the
    local search repeatable."""
    name = "offline"

    def __init__(self, seed: int = 0, patience: int = 6, use_rules: bool = True):
        super().__init__(seed)
        self.rng = random.Random(seed)
        self.patience = patience
        self.use_rules = use_rules
        self._rule_queue: list[tuple[str, Edit]] | None = None
        self._pass_queue: list[tuple[str, Edit]] | None = None
        self._weak_queue: list[tuple[str, Edit]] = []
        self._turn = False
        self._generic = list(GENERIC_MOVES)
        self._since_gain = 0
        self._profile_tried = False

    # -- phase 1 ------------------------------------------------------------------------------
    def _rules(self, state: SearchState) -> list[tuple[str, Edit]]:
        if self._rule_queue is None:
            self._rule_queue = []
            if self.use_rules:
                try:
                    from ..rules import candidate_edits
                except ImportError:
                    candidate_edits = None
                if candidate_edits is not None:
                    from ..rules import scored_edits
                    scored = []
                    for rank, tu in enumerate(state.tus):
                        if tu.evidence:
                            try:
                                edits = scored_edits(tu.evidence, list(tu.hot_functions),
                                                     state.incumbent.get(tu.tu_id, Pipeline()))
                            except Exception:
                                edits = []
                            # Scores weigh each rule by its functions' share of the whole run, so
                            # one queue over all TUs puts the most promising edit first wherever it is.
                            scored += [(score, rank, i, tu.tu_id, e) for i, (score, e) in enumerate(edits)]
                    scored.sort(key=lambda x: (-x[0], x[1], x[2]))
                    # Rules about functions that hold little of the run wait until the program-wide
                    # moves (which also reach the hottest TU) have been tried.
                    self._rule_queue = [(tu_id, e) for sc, _, _, tu_id, e in scored if sc >= WEAK_SCORE]
                    self._weak_queue = [(tu_id, e) for sc, _, _, tu_id, e in scored if sc < WEAK_SCORE]
        return self._rule_queue

    def _make(self, state: SearchState, changes: dict, agent: str, edits: list, why: str) -> Proposal | None:
        # An -O level the TU is already compiled at changes nothing but costs a build (-O2 on a
        # project built -O2, as lua and sqlite are): dropped, and a move left with no change is not made.
        user = {t.tu_id: (t.evidence or {}).get("user_opt_level") for t in state.tus}
        changes = {tu: (p.with_opt_level(None) if p.opt_level and p.opt_level == user.get(tu) else p)
                   for tu, p in changes.items()}
        changes = {tu: p for tu, p in changes.items() if p != state.incumbent.get(tu, Pipeline())}
        config = {**state.incumbent, **changes}
        if not changes or config_digest(config) in state.tried:
            return None
        for p in changes.values():
            try:
                validate(p, state.policy)
            except PipelineError:
                return None
        return Proposal(changes=changes, rationale=why, agent=agent, edits=[str(e) for e in edits])

    def ask(self, state: SearchState) -> Proposal | None:
        if state.history and state.history[-1].accepted:
            self._since_gain = 0
        elif state.history:
            self._since_gain += 1
        if state.profile and not self._profile_tried:
            self._profile_tried = True
            prop = self._profile_move(state)
            if prop:
                return prop
        spent = sum(r.verdict != "same-binary" for r in state.history)
        if spent % EXPLORE_EVERY == EXPLORE_EVERY - 1:  # (again after one that built the same binary)
            for _ in range(20):
                prop = self._perturb(state)
                if prop:
                    return prop
        queue = self._rules(state)
        while queue:
            prop = self._rule_proposal(state, *queue.pop(0))
            if prop:
                return prop
        passes = self._pass_edits(state)
        while passes or self._generic:
            # Alternate: a program-wide move, then a pass-pipeline edit (hottest TU first).
            self._turn = not self._turn
            if passes and (self._turn or not self._generic):
                tu_id, edit = passes.pop(0)
                if str(edit) in _blamed(state.history, tu_id):
                    continue  # (this TU's edit, blamed by a diagnosis or failed alone)
                if state.incumbent.get(tu_id, Pipeline()).profile:
                    continue  # PGO won there; a passes string would drop it (Edit.apply)
                try:
                    p = edit.apply(state.incumbent.get(tu_id, Pipeline()))
                except (PipelineError, ValueError):
                    continue
                prop = self._make(state, {tu_id: p}, "pass-pipeline", [edit], edit.rationale)
                if prop:
                    return prop
                continue
            why, edits, *only = self._generic.pop(0)
            changes = {}
            for tu in state.tus:
                if why == SHARED_ONLY and not getattr(tu, "shared", False):
                    continue
                if only and tu.tu_id not in only:
                    continue
                p = state.incumbent.get(tu.tu_id, Pipeline())
                if any(str(e) in _blamed(state.history, tu.tu_id) for e in edits):
                    continue
                try:
                    for e in edits:
                        p = e.apply(p)
                except (PipelineError, ValueError):
                    continue
                if p != state.incumbent.get(tu.tu_id, Pipeline()):
                    changes[tu.tu_id] = p
            scope = (" (hot TUs in shared libraries)" if why == SHARED_ONLY else "" if only else " (all hot TUs)")
            prop = self._make(state, changes, "generic", edits, why + scope)
            if prop:
                return prop
        while self._weak_queue:
            prop = self._rule_proposal(state, *self._weak_queue.pop(0))
            if prop:
                return prop
        for _ in range(200):
            prop = self._local(state, restart=self._since_gain >= self.patience)
            if prop:
                if self._since_gain >= self.patience:
                    self._since_gain = 0
                return prop
        return None

    # -- phase 0 ------------------------------------------------------------------------------
    def _profile_move(self, state: SearchState) -> Proposal | None:
        edit = Edit("profile", "profile", state.profile,
                    rationale="profile-guided optimization with an instrumentation profile of the run command",
                    source="Clang User's Manual, Profiling with Instrumentation")
        changes = {}
        for tu in state.tus:
            if str(edit) in _blamed(state.history, tu.tu_id):
                continue
            p = edit.apply(state.incumbent.get(tu.tu_id, Pipeline()))
            if p != state.incumbent.get(tu.tu_id, Pipeline()):
                changes[tu.tu_id] = p
        if len(changes) > 1:
            alone = [(f"profile-guided optimization of {tu.source} only", [edit], tu.tu_id)
                     for tu in state.tus[:PASS_EDIT_TUS] if tu.tu_id in changes]
            self._generic[2:2] = alone  # after the two most promising program-wide moves
        return self._make(state, changes, "profile", [edit], edit.rationale + " (all hot TUs)")

    def _rule_proposal(self, state: SearchState, tu_id: str, edit: Edit) -> Proposal | None:
        if str(edit) in _blamed(state.history, tu_id):
            return None
        try:
            p = edit.apply(state.incumbent.get(tu_id, Pipeline()))
        except (PipelineError, ValueError):
            return None
        return self._make(state, {tu_id: p}, f"rule:{edit.source or edit.name}", [edit], edit.rationale)

    def _pass_edits(self, state: SearchState) -> list:
        """Edited O3 pass pipelines (tuning/rules.py, each already accepted by opt-19) for the
        hottest TU and for the next hottest ones holding at least PASS_EDIT_SHARE of the run each
        (PASS_EDIT_TUS TUs at most, each with evidence), interleaved edit by edit with the hottest
        TU first; tried after the evidence rules (they replace the whole middle end, so they come
        after the cheaper, better-targeted knob edits), alternating with the program-wide moves."""
        if self._pass_queue is None:
            self._pass_queue = []
            targets = [tu for i, tu in enumerate(state.tus[:PASS_EDIT_TUS])
                       if tu.evidence and (i == 0 or (tu.weight or 0.0) >= PASS_EDIT_SHARE)]
            if self.use_rules and targets:
                try:
                    from ..evidence import o3_pipeline
                    from ..rules import pass_pipeline_edits
                    edits = pass_pipeline_edits(o3_pipeline())
                except Exception:
                    edits = []
                self._pass_queue = [(tu.tu_id, e) for e in edits for tu in targets]
        return self._pass_queue

    # -- phase 3 ------------------------------------------------------------------------------
    def _random_edit(self, p: Pipeline, profile: str | None = None) -> Edit:
        if profile and self.rng.random() < 0.1:  # the recorded profile on or off
            return Edit("profile", "profile", None if p.profile else profile)
        if self.rng.random() < 0.8:
            name = self.rng.choice(sorted(KNOBS))
            vals = neighbour_values(name, dict(p.knobs).get(name))
            return Edit("knob", name, self.rng.choice(vals) if vals else None)
        fam = self.rng.choice(sorted(FLAG_FAMILIES))
        choices = sorted(FLAG_FAMILIES[fam].choices) + [None]
        return Edit("flag", fam, self.rng.choice(choices))

    def _perturb(self, state: SearchState) -> Proposal | None:
        """A perturbation (module docstring): on every TU holding EXPLORE_SHARE of the run (or,
        half the time, on one of them picked by weight), the incumbent plus 1-3 uniform edits,
        none that a diagnosis blamed or that failed alone there."""
        hot = [t for t in state.tus if (t.weight or 0.0) >= EXPLORE_SHARE] or state.tus[:1]
        if not hot:
            return None
        if len(hot) > 1 and self.rng.random() < 0.5:
            hot = self.rng.choices(hot, weights=[t.weight or 0.0 for t in hot])
        changes, edits = {}, []
        for tu in hot:
            changes[tu.tu_id] = _edited(state, tu.tu_id, self.rng.randint(1, 3),
                                        lambda p: uniform_edit(self.rng, with_default=True), edits)
        return self._make(state, changes, "perturbation", edits,
                          "perturbation of the incumbent: " + ", ".join(sorted({str(e) for e in edits})))

    def _local(self, state: SearchState, restart: bool) -> Proposal | None:
        tus = state.tus
        if not tus:
            return None
        weights = [max(t.weight or 0.0, 0.02) for t in tus]
        tu = self.rng.choices(tus, weights=weights)[0]
        edits = []
        p = _edited(state, tu.tu_id, 3 if restart else 1, lambda p: self._random_edit(p, state.profile), edits)
        return self._make(state, {tu.tu_id: p}, "restart" if restart else "local-search", edits,
                          ("random restart: " if restart else "neighbour of the incumbent: ") + ", ".join(map(str, edits)))
