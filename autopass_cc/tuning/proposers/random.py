"""Random search: the baseline every other proposer must beat at the same trial budget.

Each proposal draws, for one hot TU (uniformly) or for all hot TUs (with probability 1/3), a
fresh pipeline of 1 to 4 uniformly chosen allowlisted knobs and flags with uniformly chosen
values, and, when the session recorded an instrumentation profile (``state.profile``), the
profile with probability 1/2 (the same search space as the offline proposer's); it ignores
evidence and history (except that it never repeats a configuration).
"""

from __future__ import annotations

import random

from ...errors import PipelineError
from ...pipeline import OPT_LEVELS, Pipeline, validate
from .base import Proposal, Proposer, SearchState, config_digest, uniform_edit


class RandomProposer(Proposer):
    """Uniform random pipelines over the allowlist (module docstring)."""
    name = "random"

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.rng = random.Random(seed)

    def _draw(self, policy, profile: str | None = None) -> Pipeline:
        while True:
            p = Pipeline()
            if profile and self.rng.random() < 0.5:
                p = p.with_profile(profile)
            if self.rng.random() < 0.2:
                p = p.with_opt_level(self.rng.choice(OPT_LEVELS))
            for _ in range(self.rng.randint(1, 4)):
                p = uniform_edit(self.rng).apply(p)
            try:
                return validate(p, policy)
            except PipelineError:
                continue

    def ask(self, state: SearchState) -> Proposal | None:
        for _ in range(100):
            targets = state.tus if self.rng.random() < 1 / 3 else [self.rng.choice(state.tus)]
            changes = {t.tu_id: self._draw(state.policy, state.profile) for t in targets}
            if config_digest({**state.incumbent, **changes}) not in state.tried:
                edits = sorted({e for p in changes.values() for e in p.describe()})
                return Proposal(changes=changes, rationale="uniform random draw", agent="random", edits=edits)
        return None
