"""Tests for autopass_cc.tuning.rules on evidence collected from real clang-19 compiles."""

import os
import shutil

import pytest

from autopass_cc.pipeline import FLAG_FAMILIES, KNOBS, Pipeline, Policy, validate
from autopass_cc.tuning import evidence as E
from autopass_cc.tuning import rules as R
from autopass_cc.tuning.proposers.base import Edit

pytestmark = pytest.mark.skipif(not (shutil.which("clang-19") and shutil.which("opt-19")),
                                reason="needs clang-19 and opt-19")

SRC = r"""
#include <math.h>
int g_sink;
static int big(int *a, int n) {
  int s = 0;
  for (int k = 0; k < 4; k++) {
    for (int i = 0; i < n; i++) { s += a[i] * k; if (a[i] > 100) a[i] -= s; else a[i] ^= s; s ^= a[i] >> 3; }
    for (int i = n - 1; i > 0; i--) { a[i] = a[i - 1] + (a[i] >> 1) * (s | 1) - k; if (a[i] & 1) s++; }
    for (int i = 0; i < n; i++) { if (a[i] % 7 == 3) s += a[i] / 3; else if (a[i] % 5) s -= a[i] * 2; }
    for (int i = 0; i < n; i++) { a[i] = (a[i] * 17 + s) % 1021 ; s += a[i] ; g_sink += s; }
  }
  return s;
}
int use_big1(int *a, int n) { return big(a, n) + 1; }
int use_big2(int *a, int n) { return big(a, n + 1) * 3; }
float fsum(const float *a, int n) { float s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }
void roots(double *a, int n) { for (int i = 0; i < n; i++) a[i] = sqrt(a[i]); }
void alias(int *a, int *b, int *c, int *d, int *e, int *f, int *g, int *h, int n) {
  for (int i = 0; i < n; i++) { a[i] = b[i] + c[i]; d[i] = e[i] * f[i]; g[i] = h[i] + a[i]; }
}
int interp(const unsigned char *code, int n) {
  int acc = 0, pc = 0;
  while (pc < n) {
    switch (code[pc++]) {
      case 0: acc += 1; break; case 1: acc -= 3; break; case 2: acc *= 5; break; case 3: acc ^= 0x55; break;
      case 4: acc <<= 1; break; case 5: acc >>= 2; break; case 6: acc = ~acc; break; case 7: pc += code[pc]; break;
      default: return acc;
    }
  }
  return acc;
}
"""

ARGS = ["-O3", "-c", "r.c", "-o", "r.o"]


@pytest.fixture(scope="module")
def tu(tmp_path_factory):
    d = tmp_path_factory.mktemp("rules")
    (d / "r.c").write_text(SRC)
    return str(d)


@pytest.fixture(scope="module")
def ev(tu):
    return E.collect("clang-19", ARGS, tu, Pipeline(), os.path.join(tu, "wd"))


def _collect(tu, pipeline, name):
    return E.collect("clang-19", ARGS, tu, pipeline, os.path.join(tu, name))


def _find(edits, name, value=None):
    for e in edits:
        if e.name == name and (value is None or str(e.value) == str(value)):
            return e
    return None


def test_every_edit_is_allowlisted_and_explained(ev):
    edits = R.candidate_edits(ev, [], Pipeline())
    assert 5 <= len(edits) <= R.MAX_EDITS
    permissive = Policy(allow_unsafe_math=True, allow_native=True)
    for e in edits:
        assert isinstance(e, Edit)
        assert e.kind in ("knob", "flag", "opt_level", "passes")
        if e.kind == "knob":
            assert e.name in KNOBS
        if e.kind == "flag":
            assert e.name in FLAG_FAMILIES and e.value in FLAG_FAMILIES[e.name].choices
        validate(e.apply(Pipeline()), permissive)
        assert e.rationale and e.source
    assert len({(e.kind, e.name, str(e.value)) for e in edits}) == len(edits)


def test_too_costly_inline_gets_a_threshold_that_works(ev, tu):
    site = ev["functions"]["use_big1"]["not_inlined"][0]
    assert site["reason"] == "TooCostly"
    edits = R.candidate_edits(ev, ["use_big1"], Pipeline())
    e = edits[0]                                 # the strongest evidence for the hottest function
    assert e.name == "inline-threshold"
    value = int(e.value)
    assert site["cost"] < value <= site["cost"] * 1.15   # "just above" the cost, scaled from 250
    assert f"cost={site['cost']}, threshold={site['threshold']}" in e.rationale
    assert "InlineCost.cpp" in e.source
    # and it does what the rationale says
    after = _collect(tu, e.apply(Pipeline()), "wd-inl")
    assert [i["callee"] for i in after["functions"]["use_big1"]["inlined"]] == ["big"]
    assert R.candidate_edits(after, ["use_big1"], e.apply(Pipeline()))[0].name != "inline-threshold"


def test_vectorizer_rules_from_reasons(ev, tu):
    edits = R.candidate_edits(ev, ["fsum", "roots", "alias"], Pipeline())
    fm = _find(edits, "fast-math", "on")
    assert fm and "cannot prove it is safe to reorder floating-point operations" in fm.rationale
    me = _find(edits, "math-errno", "off")
    assert me and "sqrt" in me.rationale and "library call cannot be vectorized" in me.rationale
    il = _find(edits, "force-vector-interleave", "2")
    assert il and "interleaving is not beneficial" in il.rationale
    # the libm rule is right: -fno-math-errno vectorizes the sqrt loop
    after = _collect(tu, me.apply(Pipeline()), "wd-errno")
    assert after["functions"]["roots"]["vectorized"] and not after["functions"]["roots"]["not_vectorized"]
    assert _find(R.candidate_edits(after, ["roots"], me.apply(Pipeline())), "math-errno") is None


def test_dispatch_loop_rule(ev):
    edits = R.candidate_edits(ev, ["interp"], Pipeline())
    e = _find(edits, "enable-dfa-jump-thread", "true")
    assert e and "8-way switch" in e.rationale
    assert _find(edits, "jump-threading-threshold", "12")
    # not proposed without a switch-dispatch loop among the hot functions
    assert _find(R.candidate_edits(ev, ["alias"], Pipeline()), "enable-dfa-jump-thread") is None


def test_order_follows_hot_share(ev):
    a = R.scored_edits(ev, [("interp", 0.9), ("alias", 0.01)], Pipeline())
    names = [e.name for _, e in a]
    assert names.index("enable-dfa-jump-thread") < names.index("force-vector-interleave")
    b = R.scored_edits(ev, [("alias", 0.9), ("interp", 0.01)], Pipeline())
    names = [e.name for _, e in b]
    assert names.index("force-vector-interleave") < names.index("enable-dfa-jump-thread")
    scores = [s for s, _ in a]
    assert scores == sorted(scores, reverse=True)


def test_no_edit_repeats_the_current_pipeline(ev):
    cur = Pipeline().with_knob("enable-dfa-jump-thread", True).with_flag("march", "native")
    edits = R.candidate_edits(ev, ["interp"], cur)
    assert _find(edits, "enable-dfa-jump-thread") is None
    assert _find(edits, "march") is None


def test_slp_and_size_rules_on_synthetic_evidence():
    f = {"counts": {"spills": 12, "reloads": 9}, "vectorized": [], "not_vectorized": [], "unrolled": [],
         "not_unrolled": [], "inlined": [], "not_inlined": [],
         "slp_missed": [{"line": 3, "reason": "NotBeneficial", "cost": 2, "threshold": 0},
                        {"line": 4, "reason": "NotBeneficial", "cost": 9, "threshold": 0}],
         "ir": {"instructions": 4000, "loops": 0, "max_loop_depth": 0}}
    ev = {"functions": {"k": f}, "user_opt_level": "O3"}
    edits = R.candidate_edits(ev, ["k"], Pipeline())
    slp = _find(edits, "slp-threshold")
    assert slp and slp.value == "-3"         # vectorized when Cost (2) < -slp-threshold
    assert _find(edits, "inline-threshold", "150")     # 0.6 x 250 at -O3
    assert _find(edits, "unroll-threshold", "150")
    assert [e.value for e in edits if e.kind == "opt_level"] == ["O2"]
    # an out-of-range need is not proposed
    f["slp_missed"] = [{"line": 3, "reason": "NotBeneficial", "cost": 40, "threshold": 0}]
    assert _find(R.candidate_edits(ev, ["k"], Pipeline()), "slp-threshold") is None


def test_hot_list_filters_functions(ev):
    edits = R.candidate_edits(ev, ["nonexistent"], Pipeline())
    assert {e.kind for e in edits} <= {"opt_level", "flag", "knob"}
    assert all(e.name in ("march", "mtune", "unroll-loops", "") for e in edits)


# ---------------------------------------------------------------------------------------------
# pass pipelines
# ---------------------------------------------------------------------------------------------

def test_validate_passes():
    assert R.validate_passes("default<O3>") is None
    assert R.validate_passes(E.o3_pipeline()) is None
    err = R.validate_passes("function(bogus-pass-name)")
    assert err and "bogus-pass-name" in err
    assert R.validate_passes("loop-unroll<O9>") is not None
    assert R.validate_passes("-print-after-all") is not None
    assert R.validate_passes("") is not None


def test_pass_pipeline_edits():
    o3 = E.o3_pipeline()
    edits = R.pass_pipeline_edits(o3)
    assert len(edits) >= 8
    names = {e.name for e in edits}
    assert {"unroll-runtime-partial", "drop-slp", "no-interleave", "dfa-jump-threading"} <= names
    for e in edits:
        assert e.kind == "passes" and e.value != o3 and R.validate_passes(e.value) is None
        assert e.apply(Pipeline()).passes == e.value
        validate(e.apply(Pipeline()))
    drop = next(e for e in edits if e.name == "drop-slp").value
    assert "slp-vectorizer" not in drop and len(drop) == len(o3) - len("slp-vectorizer,")
    dfa = next(e for e in edits if e.name == "dfa-jump-threading").value
    assert dfa.count("dfa-jump-threading") == 1 and dfa.count("jump-threading") == o3.count("jump-threading") + 1
    # a string without the tokens yields nothing
    assert R.pass_pipeline_edits("function(instcombine)") == []


def test_every_name_in_the_rule_table_is_allowlisted():
    """A knob dropped from pipeline.KNOBS must not leave a silently dead rule behind."""
    import re
    src = open(R.__file__).read()
    knobs = set(re.findall(r'"knob", "([a-z0-9-]+)"', src))
    flags = set(re.findall(r'"flag", "([a-z0-9-]+)"', src))
    assert len(knobs) >= 20 and len(flags) >= 5
    assert knobs <= set(KNOBS), knobs - set(KNOBS)
    assert flags <= set(FLAG_FAMILIES), flags - set(FLAG_FAMILIES)


def test_call_sites_of_similar_cost_share_one_inline_threshold_trial():
    """Nine hot call sites a few points over the -O2 threshold (225): per-site thresholds on the
    10 % ladder give two candidates, not nine near-duplicates (a session on sqlite3.c spent nine
    trials on 239..260, four of them the same binary)."""
    costs = [235, 237, 240, 243, 245, 248, 251, 253, 256]
    funcs = {f"f{i}": {"not_inlined": [{"reason": "TooCostly", "cost": c, "threshold": 225, "callee": f"g{i}",
                                        "line": 10 + i}], "counts": {}, "ir": {}}
             for i, c in enumerate(costs)}
    ev = {"functions": funcs, "user_opt_level": "O2"}
    hot = [(f"f{i}", 0.1) for i in range(len(costs))]
    values = sorted({int(e.value) for e in R.candidate_edits(ev, hot, Pipeline()) if e.name == "inline-threshold"})
    assert values == [248, 273], values
    for c in costs:                       # each site is let through by the value chosen for it
        assert any(v >= c + 8 for v in values)


def test_an_inline_rationale_says_when_the_weight_is_the_callees():
    """A caller the profile never saw, calling a hot callee it does not inline: the rationale gives
    the callee's rank as the callee's (QuickJS: 'js_typed_array_from (hot #1, 39.0% of run)' for a
    function that never ran)."""
    funcs = {"cold_caller": {"not_inlined": [{"reason": "TooCostly", "cost": 300, "threshold": 250,
                                              "callee": "hot_callee", "line": 7}], "counts": {}, "ir": {}},
             "hot_callee": {"not_inlined": [], "counts": {}, "ir": {}}}
    ev = {"functions": funcs, "user_opt_level": "O3"}
    edits = [e for e in R.candidate_edits(ev, [("hot_callee", 0.39)], Pipeline()) if e.name == "inline-threshold"]
    assert edits and edits[0].rationale.startswith("cold_caller (calls hot_callee, hot #1, 39.0% of run):"), edits
