"""The offline and random proposers always propose legal, new configurations."""

import pytest

from autopass_cc.pipeline import Pipeline, Policy, validate
from autopass_cc.tuning.proposers.base import Proposal, SearchState, TrialResult, TUInfo, config_digest
from autopass_cc.tuning.proposers.offline import OfflineProposer, neighbour_values
from autopass_cc.tuning.proposers.random import RandomProposer


def _drive(proposer, n=40, profile=None):
    tus = [TUInfo("a", "a.c", 0.7, [("hot", 0.7)]), TUInfo("b", "b.c", 0.3)]
    incumbent, history, tried = {}, [], {config_digest({})}
    seen = []
    for i in range(n):
        st = SearchState(tus, dict(incumbent), list(history), Policy(), n - i, set(tried), profile=profile)
        prop = proposer.ask(st)
        if prop is None:
            break
        for tu, p in prop.changes.items():
            assert tu in ("a", "b")
            validate(p, Policy())
        cfg = {**incumbent, **prop.changes}
        d = config_digest(cfg)
        assert d not in tried, "a configuration was proposed twice"
        tried.add(d)
        seen.append(prop)
        accepted = i in (3, 9)
        r = TrialResult(i + 1, prop, "faster" if accepted else "slower", ratio=1.05 if accepted else 0.97,
                        accepted=accepted)
        if accepted:
            incumbent = cfg
        history.append(r)
        proposer.tell(r)
    return seen


def test_offline_proposer_is_legal_and_never_repeats():
    seen = _drive(OfflineProposer(seed=1))
    assert len(seen) == 40
    assert seen[0].agent == "generic" and set(seen[0].changes) == {"a", "b"}   # program-wide moves first
    assert any(p.agent in ("local-search", "restart") for p in seen)


def test_offline_is_repeatable_with_a_seed():
    a = [p.edits for p in _drive(OfflineProposer(seed=3), 30)]
    b = [p.edits for p in _drive(OfflineProposer(seed=3), 30)]
    assert a == b


def test_random_proposer_is_legal():
    assert len(_drive(RandomProposer(seed=2))) == 40


def test_offline_skips_edits_that_failed():
    prop = OfflineProposer(seed=0)
    tus = [TUInfo("a", "a.c", 1.0)]
    st = SearchState(tus, {}, [], Policy(), 10, {config_digest({})})
    first = prop.ask(st)
    failed = TrialResult(1, first, "failed", "wrong output")
    st2 = SearchState(tus, {}, [failed], Policy(), 9, {config_digest({}), config_digest(first.changes)})
    second = prop.ask(st2)
    assert second.edits != first.edits


def test_neighbour_values_stay_in_range():
    assert neighbour_values("unroll-runtime", "false") == [True]
    vals = neighbour_values("inline-threshold", "225")
    assert 112 in vals and 450 in vals and all(0 <= v <= 5000 for v in vals)
    assert all(0 <= v <= 64 for v in neighbour_values("force-vector-width", None))


def test_weak_rules_wait_for_program_wide_moves(monkeypatch):
    """A rule about a function holding 2% of the run comes after the program-wide moves; a strong
    rule on the hot TU comes first."""
    from autopass_cc.tuning import rules
    from autopass_cc.tuning.proposers.base import Edit

    def fake_scored(evidence, hot, current):
        return [(evidence["score"], Edit("knob", "unroll-threshold", evidence["value"], "r", "test"))]
    monkeypatch.setattr(rules, "scored_edits", fake_scored)
    tus = [TUInfo("hot", "hot.c", 0.9, [("f", 0.9)], {"score": 0.4, "value": 700}),
           TUInfo("cold", "cold.c", 0.02, [("g", 0.02)], {"score": 0.01, "value": 900})]
    prop = OfflineProposer(seed=0)
    prop._pass_queue = []          # no pass-pipeline phase in this test
    agents, tried = [], {config_digest({})}
    for i in range(len(__import__("autopass_cc.tuning.proposers.offline", fromlist=["x"]).GENERIC_MOVES) + 3):
        p = prop.ask(SearchState(tus, {}, [], Policy(), 50, set(tried)))
        tried.add(config_digest(p.changes))
        agents.append((p.agent, sorted(p.changes)))
    assert agents[0] == ("rule:test", ["hot"])
    cold_at = agents.index(("rule:test", ["cold"]))
    assert all(a == "generic" for a, _ in agents[1:cold_at]) and cold_at > 5


def test_report_accepts_edit_objects_from_any_proposer():
    """Proposers may put Edit objects in Proposal.edits; the report must still render."""
    from autopass_cc.tuning.proposers.base import Edit, Proposal
    from autopass_cc.tuning.report import summary_text
    from autopass_cc.tuning.session import Session
    r = TrialResult(1, Proposal({}, "x", "llm:planner", [Edit("knob", "unroll-threshold", 600)]), "faster",
                    ratio=1.05, ci=(1.01, 1.09), accepted=True)
    s = Session.__new__(Session)
    s.program = type("P", (), {"tus": []})()
    d = s._trial_dict(r)
    assert d["edits"] == ["unroll-threshold=600"]
    text = summary_text({"session": "t", "budget": 1, "metric": "cpu", "run": "x", "trials": [d], "notes": []})
    assert "unroll-threshold=600 -> 1.050x" in text


def test_report_of_a_winner_that_failed_confirmation(tmp_path):
    """A trial kept during the search whose confirmation did not hold: the summary does not call it
    accepted, and the plot labels the confirmation's ratio "not confirmed" (seen on snappy and
    libjpeg-turbo: the plot showed 1.027x to the end while nothing was stored)."""
    pytest.importorskip("matplotlib")
    from autopass_cc.tuning.proposers.base import Edit, Proposal
    from autopass_cc.tuning.report import plot, summary_text
    from autopass_cc.tuning.session import Session
    r = TrialResult(4, Proposal({}, "x", "rule:slp", [Edit("knob", "slp-threshold", -1)]), "faster",
                    ratio=1.027, ci=(1.004, 1.061), accepted=True)
    s = Session.__new__(Session)
    s.program = type("P", (), {"tus": []})()
    base = {"session": "t", "budget": 8, "metric": "cpu", "run": "x", "trials": [s._trial_dict(r)], "notes": []}
    rejected = dict(base, winner={}, confirmation={"ratio": 1.004, "ci_low": 0.983, "ci_high": 1.016})
    text = summary_text(rejected)
    assert "kept during the search: trial 4: slp-threshold=-1 -> 1.027x" in text and "accepted" not in text
    assert "accepted: trial 4" in summary_text(dict(base, winner={"a": {}}, speedup=1.02, speedup_ci=[1.01, 1.03],
                                                     confirmation={"ratio": 1.02}))
    labels = []
    import matplotlib.axes
    real = matplotlib.axes.Axes.legend
    def spy(ax, *a, **k):
        labels.extend(h.get_label() for h in ax.get_legend_handles_labels()[0])
        return real(ax, *a, **k)
    matplotlib.axes.Axes.legend = spy
    try:
        assert plot(rejected, str(tmp_path / "p.png"))
    finally:
        matplotlib.axes.Axes.legend = real
    assert "not confirmed: 1.004x, nothing stored" in labels


def test_pass_pipeline_edits_reach_a_second_tu_holding_a_quarter_of_the_run():
    """Phase 2 (edited O3 pipelines, checked by the real opt-19) covers the hottest TU and, when it
    holds at least PASS_EDIT_SHARE of the run, the second one: queues interleaved, hottest first;
    a third TU, or a second one under the share, gets none."""
    from autopass_cc.tuning.proposers.offline import PASS_EDIT_SHARE
    ev = {"functions": {}}        # any evidence: phase 2 needs some, not its content
    tus = [TUInfo("a", "a.c", 0.45, [("f", 0.45)], ev), TUInfo("b", "b.c", PASS_EDIT_SHARE, [("g", 0.25)], ev),
           TUInfo("c", "c.c", 0.25, [("h", 0.25)], ev)]
    prop = OfflineProposer(seed=0)
    queue = list(prop._pass_edits(SearchState(tus, {}, [], Policy(), 24, {config_digest({})})))
    assert len(queue) >= 4
    assert [tu for tu, _ in queue] == ["a", "b"] * (len(queue) // 2)
    assert [str(e) for tu, e in queue if tu == "a"] == [str(e) for tu, e in queue if tu == "b"]
    # Through ask(): the first pass-pipeline trial goes to the hottest TU, and the second TU gets its own.
    tried, agents = {config_digest({})}, []
    for _ in range(12):
        p = prop.ask(SearchState(tus, {}, [], Policy(), 24, set(tried)))
        tried.add(config_digest(p.changes))
        agents.append((p.agent, sorted(p.changes)))
    passes = [tu for agent, tu in agents if agent == "pass-pipeline"]
    assert passes[:2] == [["a"], ["b"]], agents
    cold = [TUInfo("a", "a.c", 0.8, [("f", 0.8)], ev), TUInfo("b", "b.c", 0.2, [("g", 0.2)], ev)]
    assert {tu for tu, _ in OfflineProposer(seed=0)._pass_edits(SearchState(cold, {}, [], Policy(), 24))} == {"a"}


def test_pass_pipeline_edit_a_diagnosis_blamed_is_not_tried_again():
    """A pass-pipeline edit whose trial a diagnosis blamed (e.g. by the LLM proposer before a
    failover, or before the incumbent moved) is not proposed again for that TU, even on top of a
    new incumbent -- as knob edits already were not."""
    ev = {"functions": {}}
    tus = [TUInfo("a", "a.c", 1.0, [("f", 1.0)], ev)]
    first = OfflineProposer(seed=0)._pass_edits(SearchState(tus, {}, [], Policy(), 24))[0]
    tu_id, edit = first
    bad = TrialResult(1, Proposal(changes={tu_id: edit.apply(Pipeline())}, rationale="x", agent="pass-pipeline",
                                  edits=[str(edit)]), "slower", ratio=0.9,
                      diagnosis={"blamed": [str(edit)], "summary": "vectorization lost"})
    incumbent = {"a": Pipeline().with_knob("unroll-threshold", 600)}
    good = TrialResult(2, Proposal(changes=dict(incumbent), rationale="y", agent="rule", edits=["unroll-threshold=600"]),
                       "faster", ratio=1.03, accepted=True)
    prop = OfflineProposer(seed=0)
    tried = {config_digest({}), config_digest(bad.proposal.changes), config_digest(incumbent)}
    for _ in range(30):
        p = prop.ask(SearchState(tus, dict(incumbent), [bad, good], Policy(), 24, set(tried)))
        if p is None:
            break
        tried.add(config_digest({**incumbent, **p.changes}))
        assert not (p.agent == "pass-pipeline" and p.edits == [str(edit)]), "a blamed pass edit came back"


def _first_moves(tus, n):
    """The offline proposer's (without rules) first ``n`` proposals from an empty incumbent, none accepted."""
    prop, tried = OfflineProposer(seed=0, use_rules=False), {config_digest({})}
    seen = []
    for _ in range(n):
        p = prop.ask(SearchState(tus, {}, [], Policy(), 24, set(tried)))
        tried.add(config_digest(p.changes))
        seen.append(p)
    return seen


def test_the_shared_library_move_changes_only_tus_in_shared_libraries():
    tus = [TUInfo("exe", "main.c", 0.5, [("f", 0.5)]), TUInfo("lib", "lib.c", 0.5, [("g", 0.5)], shared=True)]
    seen = _first_moves(tus, 6)
    move = next(p for p in seen if "no semantic interposition" in p.rationale)
    assert set(move.changes) == {"lib"}
    assert set(move.changes["lib"].describe()) == {"-fno-plt", "-fno-semantic-interposition"}


PROFILE = "ab" * 32


def test_a_recorded_profile_is_the_offline_proposers_first_move_then_each_hot_tu_alone():
    seen = _drive(OfflineProposer(seed=1), 12, profile=PROFILE)
    first = seen[0]
    assert first.agent == "profile" and set(first.changes) == {"a", "b"}
    assert all(p.profile == PROFILE for p in first.changes.values())
    # not accepted (trial 1 is "slower" in _drive): each of the two hottest TUs alone comes later,
    # after the two most promising program-wide moves (O2, then the shared-library move, which has
    # no TU to change here); the fourth trial is a perturbation (EXPLORE_EVERY)
    alone = [(i, p) for i, p in enumerate(seen) if p.agent == "generic" and "only" in p.rationale]
    assert [set(p.changes) for _, p in alone] == [{"a"}, {"b"}], [p.rationale for p in seen]
    assert [i for i, _ in alone] == [2, 4] and seen[3].agent == "perturbation"
    assert all(p.changes[tu].profile == PROFILE for _, p in alone for tu in p.changes)


def test_without_a_profile_no_proposer_names_one():
    for proposer in (OfflineProposer(seed=1), RandomProposer(seed=1)):
        assert all(p.profile is None for prop in _drive(proposer, 30) for p in prop.changes.values())


def test_random_search_draws_the_profile_as_one_more_dimension():
    seen = _drive(RandomProposer(seed=4), 40, profile=PROFILE)
    used = [p.profile == PROFILE for prop in seen for p in prop.changes.values()]
    assert 0.25 < sum(used) / len(used) < 0.75, used


def test_llm_profile_edits_name_the_sessions_profile_only():
    import pytest
    from autopass_cc.errors import PipelineError
    from autopass_cc.tuning.proposers.llm import LLMProposer, _Refusal, proposal_schema
    on = LLMProposer._edit({"kind": "profile", "value": True}, Policy(), PROFILE)
    assert on.apply(Pipeline()).profile == PROFILE
    assert LLMProposer._edit({"kind": "profile", "value": False}, Policy(), PROFILE).apply(
        Pipeline().with_profile(PROFILE)).profile is None
    with pytest.raises(_Refusal):            # nothing recorded: nothing to name
        LLMProposer._edit({"kind": "profile", "value": True}, Policy(), None)
    with pytest.raises(PipelineError):       # a path (or anything but a boolean) is refused
        LLMProposer._edit({"kind": "profile", "value": "/tmp/x.profdata"}, Policy(), PROFILE)
    kinds = lambda schema: {b["properties"]["kind"]["enum"][0] for b in schema["properties"]["edits"]["items"]["anyOf"]}
    assert "profile" in kinds(proposal_schema(["a"], Policy(), profile=True))
    assert "profile" not in kinds(proposal_schema(["a"], Policy()))


def test_a_profile_and_a_passes_string_exclude_each_other_in_every_edit():
    """pipeline.validate refuses a profile with a passes string (the split route would drop an
    IR-level profile silently), so an edit that sets one drops the other: no proposer wastes a
    trial on a refused combination."""
    from autopass_cc.tuning.proposers.base import Edit
    split = Pipeline().with_knob("unroll-threshold", 600).with_passes("function(instcombine)")
    pgo = Edit("profile", "profile", PROFILE).apply(split)
    assert pgo.profile == PROFILE and pgo.passes is None and dict(pgo.knobs) == {"unroll-threshold": "600"}
    validate(pgo)
    back = Edit("passes", "", "function(sroa)").apply(pgo)
    assert back.passes == "function(sroa)" and back.profile is None
    validate(back)
    # turning either off leaves the other as it was
    assert Edit("profile", "profile", None).apply(split) == split
    assert Edit("passes", "", None).apply(pgo) == pgo


def test_an_edit_back_to_clangs_default_reads_default():
    """Session logs and reports print edits: a flag family or knob with no value is at clang's
    default (no option at all), which "fast-math=None" did not say."""
    from autopass_cc.tuning.proposers.base import Edit
    assert str(Edit("flag", "fast-math", None)) == "fast-math=default"
    assert str(Edit("knob", "unroll-threshold", None)) == "unroll-threshold=default"
    assert str(Edit("opt_level", "", None)) == "opt_level=default"
    assert str(Edit("flag", "fast-math", "on")) == "fast-math=on"
    assert str(Edit("knob", "enable-gvn-sink", False)) == "enable-gvn-sink=False"


def test_no_pass_pipeline_edit_for_a_tu_whose_incumbent_won_with_the_profile():
    ev = {"functions": {}}
    tus = [TUInfo("a", "a.c", 0.6, [("f", 0.6)], ev), TUInfo("b", "b.c", 0.4, [("g", 0.4)], ev)]
    incumbent = {"a": Pipeline().with_profile(PROFILE)}
    prop, tried = OfflineProposer(seed=0, use_rules=True), {config_digest(incumbent)}
    agents = []
    for _ in range(14):
        p = prop.ask(SearchState(tus, dict(incumbent), [], Policy(), 24, set(tried), profile=PROFILE))
        if p is None:
            break
        tried.add(config_digest({**incumbent, **p.changes}))
        for p2 in p.changes.values():
            validate(p2)
        agents.append((p.agent, sorted(p.changes)))
    passes = [tu for agent, tu in agents if agent == "pass-pipeline"]
    assert passes and all(tu == ["b"] for tu in passes), agents


def test_the_offline_proposer_does_not_propose_the_level_a_tu_is_already_built_at():
    ev2 = {"functions": {}, "user_opt_level": "O2"}
    tus = [TUInfo("a", "a.c", 0.6, [("f", 0.6)], ev2), TUInfo("b", "b.c", 0.4, [("g", 0.4)], {"functions": {}})]
    seen = _first_moves(tus, 5)
    o2 = next(p for p in seen if p.rationale.startswith("O2 instead of O3"))
    assert set(o2.changes) == {"b"}          # a.c is built -O2 already: no trial spent on it


def test_every_fourth_trial_spent_is_a_perturbation_of_the_incumbent_on_the_hot_tus():
    """EXPLORE_EVERY: trials 4, 8, 12, ... that consume the budget are 1-3 uniform edits on top
    of the incumbent (which keeps what won, the profile included) on TUs holding 5% of the run;
    same-binary trials do not count, and a TU below EXPLORE_SHARE is never perturbed."""
    from autopass_cc.tuning.proposers import offline
    tus = [TUInfo("a", "a.c", 0.7, [("hot", 0.7)]), TUInfo("b", "b.c", 0.27), TUInfo("c", "c.c", 0.03)]
    won = Pipeline().with_profile(PROFILE).with_knob("unroll-threshold", 600)
    incumbent, history, tried = {"a": won}, [], {config_digest({}), config_digest({"a": won})}
    prop, agents = OfflineProposer(seed=5), []
    for i in range(24):
        st = SearchState(tus, dict(incumbent), list(history), Policy(), 24 - i, set(tried), profile=PROFILE)
        p = prop.ask(st)
        tried.add(config_digest({**incumbent, **p.changes}))
        verdict = "same-binary" if i % 5 == 4 else "slower"
        agents.append((p.agent, verdict))
        history.append(TrialResult(i + 1, p, verdict, ratio=0.98))
        if p.agent == "perturbation":
            assert set(p.changes) <= {"a", "b"} and 1 <= len(p.edits)
            for tu, pipe in p.changes.items():
                validate(pipe, Policy())
            if "a" in p.changes:   # on top of what won there
                assert p.changes["a"].profile == PROFILE
    spent = 0
    for agent, verdict in agents:
        assert (agent == "perturbation") == (spent % offline.EXPLORE_EVERY == offline.EXPLORE_EVERY - 1), agents
        spent += verdict != "same-binary"
