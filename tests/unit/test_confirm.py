"""Step 5 of a session: the final incumbent is confirmed against the baseline with fresh rounds,
and when it does not hold, the incumbents before it are, newest first (session.CONFIRM_FALLBACKS).

The runs are stand-ins with known medians (a stand-in for the user's run command, as a fake
compiler is for argument handling); the comparison, the bootstrap and the fallback order are the
session's own."""

import itertools
import random

from autopass_cc.pipeline import Pipeline
from autopass_cc.tuning.report import summary_text
from autopass_cc.tuning.session import CONFIRM_FALLBACKS, Session, _WrongOnRepeat


def _session(medians: dict, wrong=()):
    """A Session whose runs of binary B take medians[B] seconds (+-0.5% noise, seeded), and whose
    binaries in ``wrong`` print a different output on their second run."""
    s = Session.__new__(Session)
    s.settings = {"confirm_rounds": 15, "confidence": 0.95}
    s.run_timeout = 10.0
    s.seed = 0
    rng = random.Random(1)
    calls = {b: itertools.count() for b in medians}

    def timed(binary, timeout):
        def once():
            if binary in wrong and next(calls[binary]) >= 1:
                raise _WrongOnRepeat("stdout differs")
            return medians[binary] * (1 + rng.uniform(-0.005, 0.005))
        return once
    s._timed = timed
    return s


def _cfg(*knobs):
    p = Pipeline()
    for k in knobs:
        p = p.with_knob(k, True)
    return {"tu-a": p, "tu-b": Pipeline()}


def test_the_final_incumbent_that_holds_is_the_winner():
    s = _session({"base": 1.0, "t3": 0.9, "t7": 0.85})
    report = {"notes": []}
    accepted = [(3, _cfg("enable-gvn-sink"), "t3"), (7, _cfg("enable-gvn-sink", "enable-gvn-hoist"), "t7")]
    winner, cmp = s._confirm("base", accepted, report)
    assert winner == {"tu-a": accepted[1][1]["tu-a"]}  # (the TU at the user's flags is not part of it)
    assert cmp.significant and 1.15 < cmp.ratio < 1.2
    assert report["confirmed_trial"] == 7 and len(report["confirmations"]) == 1 and report["notes"] == []


def test_a_final_incumbent_that_does_not_hold_falls_back_to_an_earlier_one():
    # trial 3 was a real 10% gain; trial 9, accepted on top of it, was a false positive that
    # lost all of it: the session stores trial 3's configuration, not nothing
    s = _session({"base": 1.0, "t3": 0.9, "t9": 1.0})
    report = {"notes": [], "trials": [
        {"trial": 3, "verdict": "faster", "accepted": True, "edits": ["profile=abc"], "ratio": 1.11, "ci": [1.1, 1.12], "agent": "profile"},
        {"trial": 9, "verdict": "faster", "accepted": True, "edits": ["unroll-count=8"], "ratio": 1.01, "ci": [1.005, 1.02], "agent": "x"}]}
    accepted = [(3, _cfg("enable-gvn-sink"), "t3"), (9, _cfg("enable-gvn-sink", "enable-gvn-hoist"), "t9")]
    winner, cmp = s._confirm("base", accepted, report)
    assert winner == {"tu-a": accepted[0][1]["tu-a"]}
    assert cmp.significant and report["confirmed_trial"] == 3
    assert [c["trial"] for c in report["confirmations"]] == [9, 3]
    assert [c["held"] for c in report["confirmations"]] == [False, True]
    assert "confirming the incumbent after trial 3" in report["notes"][0]
    assert "stored instead" in report["notes"][1]
    text = summary_text({**report, "session": "x", "budget": 16, "metric": "cpu", "run": "./a", "confirmation": cmp.to_dict(),
                         "winner": {"tu-a": {}}, "speedup": cmp.ratio, "speedup_ci": [cmp.ci_low, cmp.ci_high]})
    assert "accepted: trial 3" in text and "kept during the search: trial 9" in text


def test_fallbacks_are_bounded_and_nothing_is_stored_when_none_holds():
    n = CONFIRM_FALLBACKS + 3
    medians = {"base": 1.0, **{f"t{i}": 1.0 for i in range(n)}}
    s = _session(medians)
    report = {"notes": []}
    accepted = [(i, _cfg("enable-gvn-sink"), f"t{i}") for i in range(n)]
    winner, cmp = s._confirm("base", accepted, report)
    assert winner == {} and not cmp.significant
    assert [c["trial"] for c in report["confirmations"]] == list(range(n - 1, n - 2 - CONFIRM_FALLBACKS, -1))
    assert report["notes"][-1].endswith("nothing stored") and "confirmed_trial" not in report
    # the first comparison (the final incumbent's) is the one the report shows
    assert report["confirmation"]["ratio"] == report["confirmations"][0]["ratio"]


def test_an_incumbent_whose_output_changes_on_a_repeat_run_is_not_stored():
    s = _session({"base": 1.0, "t2": 0.9, "t5": 0.8}, wrong={"t5"})
    report = {"notes": []}
    accepted = [(2, _cfg("enable-gvn-sink"), "t2"), (5, _cfg("enable-gvn-hoist"), "t5")]
    winner, cmp = s._confirm("base", accepted, report)
    assert report["confirmed_trial"] == 2 and winner == {"tu-a": accepted[0][1]["tu-a"]}
    assert "different output" in report["notes"][0] and "confirming the incumbent after trial 2" in report["notes"][0]


def test_a_fallback_is_confirmed_at_a_stricter_level():
    """A fallback is a second chance to pass by noise: it is made at 1 - (1 - confidence) x
    FALLBACK_ALPHA_SHARE (0.99 for 0.95).  The comparisons' recorded levels show it."""
    from autopass_cc.tuning.session import FALLBACK_ALPHA_SHARE
    s = _session({"base": 1.0, "t1": 0.9, "t2": 1.0})
    report = {"notes": []}
    s._confirm("base", [(1, _cfg("enable-gvn-sink"), "t1"), (2, _cfg("enable-gvn-hoist"), "t2")], report)
    assert report["confirmed_trial"] == 1
    assert report["confirmation"]["confidence"] == 1 - 0.05 * FALLBACK_ALPHA_SHARE


def test_nothing_accepted_means_no_confirmation():
    s = _session({"base": 1.0})
    report = {"notes": []}
    assert s._confirm("base", [], report) == ({}, None)
    assert "confirmation" not in report
    # an accepted configuration that is all user flags is not confirmed either
    assert s._confirm("base", [(1, {"tu-a": Pipeline()}, "base")], report) == ({}, None)
