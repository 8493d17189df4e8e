"""Tests for autopass_cc.tuning.diagnose on evidence from real clang-19 compiles."""

import os
import shutil

import pytest

from autopass_cc.pipeline import Pipeline
from autopass_cc.tuning import evidence as E
from autopass_cc.tuning.diagnose import blamed_edits, diagnose, diff_function
from autopass_cc.tuning.proposers.base import Edit

pytestmark = pytest.mark.skipif(not (shutil.which("clang-19") and shutil.which("opt-19")),
                                reason="needs clang-19 and opt-19")

SRC = r"""
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
void saxpy(float *restrict y, const float *restrict x, float a, int n) {
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}
int prefix(int *a, int n) {
  for (int i = 1; i < n; i++) a[i] = a[i - 1] * 3 + a[i];
  return a[n - 1];
}
"""
ARGS = ["-O3", "-c", "d.c", "-o", "d.o"]
HOT = ["saxpy", "use_big1", "prefix", "big"]


@pytest.fixture(scope="module")
def tu(tmp_path_factory):
    d = tmp_path_factory.mktemp("diag")
    (d / "d.c").write_text(SRC)
    return str(d)


@pytest.fixture(scope="module")
def base(tu):
    return E.collect("clang-19", ARGS, tu, Pipeline(), os.path.join(tu, "base"))


def _ev(tu, p, name):
    return E.collect("clang-19", ARGS, tu, p, os.path.join(tu, name))


def test_identical_evidence_has_no_difference(base):
    d = diagnose(base, base, HOT)
    assert d["functions"] == {} and d["changed"] == []
    assert set(d["unchanged"]) == set(HOT)
    assert d["summary"].startswith("no difference")
    assert d["totals_delta"] == {}


def test_lost_vectorization(base, tu):
    cand = _ev(tu, Pipeline().with_flag("vectorize", "off"), "novec")
    d = diagnose(base, cand, HOT)
    s = d["functions"]["saxpy"]
    assert s["vectorized_lost"] == [{"line": 16, "vf": 4, "ic": 2}]
    assert s["ir_delta"]["vector_instructions"] < 0 and s["ir_growth"] < 0
    assert "saxpy: lost vectorization at L16 (VF4 IC2)" in d["summary"]
    assert d["totals_delta"]["vectorized"] < 0
    edits = [Edit("flag", "vectorize", "off"), Edit("knob", "inline-threshold", "300"),
             Edit("knob", "x86-cmov-converter", "false")]
    assert blamed_edits(d, edits) == ["vectorize=off"]


def test_inlining_difference(base, tu):
    cand = _ev(tu, Pipeline().with_knob("inline-threshold", 400), "inl")
    d = diagnose(base, cand, HOT)
    assert d["functions"]["use_big1"]["inlined_gained"] == ["big"]
    assert d["functions"]["use_big1"]["ir_delta"]["instructions"] > 100
    assert d["functions"]["big"]["presence"] == "only-incumbent"      # inlined into both callers
    assert "use_big1: " in d["summary"] and "now inlines big" in d["summary"]
    assert "big: gone (inlined everywhere or removed)" in d["summary"]
    assert blamed_edits(d, ["inline-threshold=400", "slp-threshold=-3", "tail-dup-size=6"]) == ["inline-threshold=400"]


def test_unrolling_difference(base, tu):
    cand = _ev(tu, Pipeline().with_flag("unroll-loops", "off"), "nounroll")
    d = diagnose(base, cand, ["prefix"])
    u = d["functions"]["prefix"]["unroll_changed"]
    assert u == [{"line": 19, "before": ["runtime", 4], "after": None}]
    assert "unrolling L19 runtime x4->none" in d["summary"]
    assert blamed_edits(d, ["unroll-loops=off", "force-vector-width=8", "align-functions=a32"]) == ["unroll-loops=off"]


def test_codegen_only_change_blames_backend_knobs(base, tu):
    cand = _ev(tu, Pipeline().with_knob("x86-cmov-converter", False), "cmov")
    d = diagnose(base, cand, HOT)
    assert d["functions"] == {}
    assert "code generation" in d["summary"]
    assert blamed_edits(d, ["unroll-threshold=600", "x86-cmov-converter=false"]) == ["x86-cmov-converter=false"]


def test_blame_fallbacks():
    d = {"functions": {"f": {"slp_delta": 2}}}
    assert blamed_edits(d, []) == []
    assert blamed_edits(d, ["inline-threshold=300"]) == ["inline-threshold=300"]          # the only suspect
    assert blamed_edits(d, ["inline-threshold=300", "slp-threshold=-2"]) == ["slp-threshold=-2"]
    assert blamed_edits(d, ["align-functions=a32", "tail-dup-size=4"]) == ["align-functions=a32", "tail-dup-size=4"]
    passes = Edit("passes", "drop-slp", "default<O3>")
    assert blamed_edits(d, [passes, Edit("flag", "align-functions", "a32")]) == [str(passes)]
    assert str(passes).startswith("passes[")


def test_diff_function_growth_without_remark_change_is_size():
    a = {"ir": {"instructions": 100}, "counts": {}}
    b = {"ir": {"instructions": 150}, "counts": {}}
    d = diff_function(a, b)
    assert d["ir_growth"] == 0.5 and d["ir_delta"] == {"instructions": 50}
    diag = {"functions": {"f": d}}
    assert blamed_edits(diag, ["jump-threading-threshold=12", "align-functions=a32"]) == ["jump-threading-threshold=12"]
