"""Tests for autopass_cc.tuning.evidence on real remarks and IR produced by clang-19 / opt-19."""

import os
import shutil
import subprocess

import pytest

from autopass_cc import emit
from autopass_cc.invocation import classify
from autopass_cc.pipeline import Pipeline
from autopass_cc.tuning import evidence as E

pytestmark = pytest.mark.skipif(not (shutil.which("clang-19") and shutil.which("opt-19")),
                                reason="needs clang-19 and opt-19")

SRC = r"""
#include <math.h>
static int sq(int x) { return x * x; }
int g_sink;
__attribute__((noinline)) int never(int x) { return x + 1; }
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
int sumsq(const int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += sq(a[i]); return s + never(s); }
int fixed(int *a) { int s = 0; for (int i = 0; i < 8; i++) s += a[i] * i; return s; }
void hoist(float *a, const float *b, int n, int m) {
  for (int i = 0; i < n; i++) a[i] = b[m] * b[m + 1] + a[i] * (float)m;
}
int ext(int);
int calls_ext(int n) { int s = 0; for (int i = 0; i < n; i++) s += ext(i); return s; }
int add1(int x) { return x + 1; }
float fsum(const float *a, int n) { float s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }
void roots(double *a, int n) { for (int i = 0; i < n; i++) a[i] = sqrt(a[i]); }
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
const char *opname(int op) {
  switch (op) {
    case 0: return "add"; case 1: return "sub"; case 2: return "mul"; case 3: return "div";
    case 4: return "mod"; case 5: return "neg"; case 6: return "not"; case 7: return "ret";
    default: return "?";
  }
}
"""


@pytest.fixture(scope="module")
def tu(tmp_path_factory):
    d = tmp_path_factory.mktemp("ev")
    (d / "t.c").write_text(SRC)
    return str(d)


ARGS = ["-O3", "-MMD", "-MF", "t.d", "-c", "t.c", "-o", "t.o"]


@pytest.fixture(scope="module")
def ev(tu):
    return E.collect("clang-19", ARGS, tu, Pipeline(), os.path.join(tu, "wd"))


def fn(ev, name):
    return ev["functions"][name]


# ---------------------------------------------------------------------------------------------
# remarks
# ---------------------------------------------------------------------------------------------

def test_shape_and_files(ev, tu):
    assert ev["tu"] == "t.c"
    assert ev["remarks_file_bytes"] > 1000
    assert ev["remarks_parsed"] > 20
    assert ev["truncated"] is False
    assert os.path.exists(os.path.join(tu, "wd", "x.o"))
    # the user's object and dependency file are untouched by an evidence compile
    assert not os.path.exists(os.path.join(tu, "t.o")) and not os.path.exists(os.path.join(tu, "t.d"))
    assert ev["user_opt_level"] == "O3"
    import json
    json.dumps(ev)  # JSON-able


def test_vectorized_loop(ev):
    v = fn(ev, "saxpy")["vectorized"]
    assert len(v) == 1
    assert v[0]["line"] == 19 and v[0]["vf"] == 4 and v[0]["ic"] == 2   # SSE2: 4 x float
    assert fn(ev, "saxpy")["counts"]["vectorized"] == 1


def test_not_vectorized_loop_carried_dependence(ev):
    nv = fn(ev, "prefix")["not_vectorized"]
    assert fn(ev, "prefix")["vectorized"] == []
    names = [r["name"] for loop in nv for r in loop["reasons"]]
    assert "UnsafeDep" in names
    assert any("unsafe dependent memory operations" in r["message"] for loop in nv for r in loop["reasons"])


def test_fp_reduction_reason_from_AnalysisFPCommute_tag(ev):
    reasons = [r["name"] for loop in fn(ev, "fsum")["not_vectorized"] for r in loop["reasons"]]
    assert "CantReorderFPOps" in reasons


def test_libcall_reason(ev):
    reasons = [r["name"] for loop in fn(ev, "roots")["not_vectorized"] for r in loop["reasons"]]
    assert "CantVectorizeLibcall" in reasons


def test_inlined_call_site(ev):
    inl = fn(ev, "sumsq")["inlined"]
    assert [i["callee"] for i in inl] == ["sq"]
    assert inl[0]["cost"] < inl[0]["threshold"]
    assert inl[0]["threshold"] == 375   # 250 at -O3 + 50 % single-basic-block bonus (InlineCost.cpp)


def test_not_inlined_too_costly_with_cost_and_threshold(ev):
    ni = fn(ev, "use_big1")["not_inlined"]
    assert len(ni) == 1
    site = ni[0]
    assert site["callee"] == "big" and site["reason"] == "TooCostly"
    assert isinstance(site["cost"], int) and isinstance(site["threshold"], int)
    assert site["cost"] > site["threshold"] == 250
    assert fn(ev, "use_big1")["counts"]["too_costly"] == 1


def test_other_not_inlined_reasons(ev):
    reasons = {i["callee"]: i["reason"] for i in fn(ev, "sumsq")["not_inlined"]}
    assert reasons == {"never": "NeverInline"}
    reasons = {i["callee"]: i["reason"] for i in fn(ev, "calls_ext")["not_inlined"]}
    assert reasons == {"ext": "NoDefinition"}


def test_unrolled(ev):
    assert fn(ev, "fixed")["unrolled"] == [{"line": 26, "kind": "full", "count": 8}]
    kinds = {u["kind"] for u in fn(ev, "prefix")["unrolled"]}
    assert kinds == {"runtime"}
    refused = fn(ev, "calls_ext")["not_unrolled"]
    assert len(refused) == 1 and refused[0]["reason"] == "DontUnroll"   # de-duplicated


def test_a_peeled_loop_is_not_a_partial_unroll(tmp_path):
    """LLVM's "peeled loop by 1 iterations" (loop-unroll pass, remark Peeled, argument PeelCount)
    is recorded as a peel with its count, not as a partial unroll of unknown factor (which the
    rules took for a small unroll factor)."""
    (tmp_path / "p.c").write_text("int peel(const int *a, int n) { int s = 0;\n"
                                  "  for (int i = 0; i < n; i++) { if (i == 0) s += 100; else s += a[i] * 3; }\n"
                                  "  return s; }\n")
    ev = E.collect("clang-19", ["-O3", "-c", "p.c", "-o", "p.o"], str(tmp_path), Pipeline(), str(tmp_path / "wd"))
    assert [(u["kind"], u["count"]) for u in ev["functions"]["peel"]["unrolled"]] == [("peeled", 1)]


def test_licm_gvn_and_backend_counts(ev):
    c = fn(ev, "hoist")["counts"]
    assert c["licm_hoisted"] >= 3
    assert fn(ev, "big")["counts"]["gvn_load_clobbered"] > 0
    assert fn(ev, "big")["stack_bytes"] is not None and fn(ev, "big")["stack_bytes"] > 0
    assert fn(ev, "saxpy")["machine_instructions"] > 10
    t = ev["totals"]
    assert t["inlined"] >= 1 and t["too_costly"] == 2 and t["vectorized"] >= 3 and t["licm_hoisted"] >= 3


# ---------------------------------------------------------------------------------------------
# IR statistics
# ---------------------------------------------------------------------------------------------

def test_ir_trivial_function(ev):
    ir = fn(ev, "add1")["ir"]
    assert (ir["instructions"], ir["blocks"], ir["loops"], ir["calls"], ir["vector_instructions"]) == (2, 1, 0, 0, 0)
    assert ir["internal"] is False


def test_ir_loops_vectors_calls(ev):
    s = fn(ev, "saxpy")["ir"]
    assert s["loops"] == 2 and s["max_loop_depth"] == 1          # vector body + scalar remainder
    assert s["vector_instructions"] >= 4
    assert fn(ev, "prefix")["ir"]["vector_instructions"] == 0
    b = fn(ev, "big")["ir"]
    assert b["internal"] is True and b["max_loop_depth"] == 2
    c = fn(ev, "calls_ext")["ir"]
    assert c["calls"] == 1 and c["callees"] == ["ext"] and c["loops"] == 1
    assert fn(ev, "fixed")["ir"]["loops"] == 0                    # fully unrolled
    assert "sqrt" in fn(ev, "roots")["ir"]["callees"]


def test_ir_switch_in_loop(ev):
    ir = fn(ev, "interp")["ir"]
    assert ir["switches"] == 1 and ir["switch_cases"] == 8 and ir["max_switch_cases_in_loop"] == 8
    assert fn(ev, "opname")["ir"]["max_switch_cases_in_loop"] == 0   # switch, but no loop


def test_ir_stats_parser_on_handwritten_ir():
    ll = """
define internal i32 @"q f"(i32 %x) {
entry:
  %a = add i32 %x, 1
  br label %next

next:
  #dbg_value(i32 %a, !1, !DIExpression(), !2)
  %v = insertelement <4 x i32> poison, i32 %a, i64 0
  %c = call i32 @llvm.smax.i32(i32 %a, i32 0)
  %d = call i32 %fp(i32 %c)
  ret i32 %d
}
"""
    st, _ = E.ir_stats(ll)
    s = st["q f"]
    assert (s["instructions"], s["blocks"], s["vector_instructions"], s["calls"], s["intrinsic_calls"],
            s["indirect_calls"]) == (6, 2, 1, 1, 1, 1)
    assert s["internal"] is True


# ---------------------------------------------------------------------------------------------
# parsing details: any tag, pre-filter, caps
# ---------------------------------------------------------------------------------------------

def _doc(tag, pas, name, func, args=""):
    return f"--- !{tag}\nPass:            {pas}\nName:            {name}\nFunction:        {func}\nArgs:\n{args or '  - String: x'}\n...\n"


def test_any_tag_prefilter_and_caps():
    inl = "  - Callee: c{}\n  - Caller: f\n  - Cost: '5'\n  - Threshold: '250'\n"
    text = "".join(_doc("Passed", "inline", "Inlined", "f", inl.format(i)) for i in range(40))
    text += _doc("Analysis", "asm-printer", "InstructionMix", "f") * 100
    text += _doc("SomethingNew", "newpass", "Odd", "f")
    text += _doc("Failure", "loop-vectorize", "FailedRequestedVectorization", "g")
    docs, truncated = E.parse_remarks_text(text)
    assert len(docs) == 42 and not truncated          # 100 InstructionMix dropped before parsing
    assert {d["_kind"] for d in docs} == {"Passed", "SomethingNew", "Failure"}
    f = E.summarize_remarks(docs)
    assert f["f"]["counts"]["inlined"] == 40 and len(f["f"]["inlined"]) == E.MAX_LIST
    assert f["f"]["other"] == {"newpass/Odd": 1}
    assert f["g"]["counts"]["not_vectorized"] == 1
    docs, truncated = E.parse_remarks_text(text, max_docs=10)
    assert len(docs) == 10 and truncated


# ---------------------------------------------------------------------------------------------
# pass pipelines and the split route
# ---------------------------------------------------------------------------------------------

def test_o3_pipeline_string_is_cached():
    s = E.o3_pipeline()
    assert "loop-vectorize<" in s and "slp-vectorizer" in s and "loop-unroll<O3>" in s and "inline" in s
    assert E.o3_pipeline() is s


def _text_section(obj, tmp):
    out = os.path.join(tmp, os.path.basename(obj) + ".text")
    subprocess.run(["llvm-objcopy-19", "-O", "binary", "--only-section=.text", obj, out], check=True)
    with open(out, "rb") as f:
        return f.read()


@pytest.mark.parametrize("passes", ["default<O3>", "O3-printed"])
def test_split_route_matches_plain_O3_text(tu, passes):
    """The split route (front end -> opt-19 -passes=... -> back end) with the O3 pipeline gives
    the same .text bytes as clang-19 -O3 -c; the switch returning string pointers (opname)
    becomes a relative lookup table only if opt uses the PIC relocation model (emit.opt_target_args)."""
    if passes == "O3-printed":
        passes = E.o3_pipeline()
    args = ["-O3", "-c", "t.c", "-o", "t.o"]
    inv = classify(args, tu)
    a, b = os.path.join(tu, "plain.o"), os.path.join(tu, "split.o")
    r1 = emit.compile_tu("clang-19", inv, emit.retarget(args, a), Pipeline(), tu, output=a)
    r2 = emit.compile_tu("clang-19", inv, emit.retarget(args, b), Pipeline(passes=passes), tu, output=b)
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr
    assert len(r2.commands) == 3
    ta, tb = _text_section(a, tu), _text_section(b, tu)
    assert len(ta) > 500
    assert ta == tb


def test_opt_target_args_follow_the_front_end(tu):
    pie, nopic = os.path.join(tu, "pie.bc"), os.path.join(tu, "nopic.bc")
    base = ["clang-19", "-O3", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c", "t.c"]
    subprocess.run(base + ["-o", pie], cwd=tu, check=True)
    subprocess.run(base + ["-fno-pic", "-o", nopic], cwd=tu, check=True)
    assert emit.opt_target_args(pie) == ["-relocation-model=pic"]
    assert emit.opt_target_args(nopic) == []
    assert emit.opt_target_args(nopic, ("-mcmodel=large",)) == ["-code-model=large"]


def test_collect_with_pass_string_matches_clang_route(tu, ev):
    ev2 = E.collect("clang-19", ARGS, tu, Pipeline(passes=E.o3_pipeline()), os.path.join(tu, "wd-passes"))
    for k in ("inlined", "too_costly", "vectorized", "not_vectorized", "unrolled", "ir_instructions", "ir_loops",
              "ir_vector_instructions"):
        assert ev2["totals"][k] == ev["totals"][k], k
    assert fn(ev2, "saxpy")["machine_instructions"] == fn(ev, "saxpy")["machine_instructions"]   # back-end record


def test_collect_applies_the_pipeline(tu):
    ev2 = E.collect("clang-19", ARGS, tu, Pipeline().with_flag("vectorize", "off").with_knob("inline-threshold", 400),
                    os.path.join(tu, "wd-novec"))
    assert fn(ev2, "saxpy")["vectorized"] == []
    assert fn(ev2, "saxpy")["ir"]["vector_instructions"] == 0          # the IR is this compile's IR
    assert [i["callee"] for i in fn(ev2, "use_big1")["inlined"]] == ["big"]
    assert ev2["pipeline"] == ["-fno-vectorize", "inline-threshold=400"]


def test_collect_errors(tu):
    with pytest.raises(ValueError):
        E.collect("clang-19", ["t.c", "-o", "t"], tu, Pipeline(), os.path.join(tu, "wd-err"))   # a link
    with open(os.path.join(tu, "bad.c"), "w") as f:
        f.write("int f( {\n")
    with pytest.raises(E.EvidenceError, match="error"):
        E.collect("clang-19", ["-O2", "-c", "bad.c"], tu, Pipeline(), os.path.join(tu, "wd-err"))


# ---------------------------------------------------------------------------------------------
# prompt summary
# ---------------------------------------------------------------------------------------------

def test_summarize_for_prompt(ev):
    text = E.summarize_for_prompt(ev, [("prefix", 0.6), "saxpy"], 4000)
    assert len(text) <= 4000
    lines = text.splitlines()
    assert lines[0].startswith("TU t.c")
    assert lines[1].startswith("fn prefix [hot #1, 60.0% of run]")
    assert "UnsafeDep" in text and "vectorized L19: VF 4 IC 2" in text
    assert "big TooCostly cost" in text
    short = E.summarize_for_prompt(ev, ["saxpy"], 400)
    assert len(short) <= 400 and "fn saxpy [hot #1]" in short and "more functions not shown" in short


def test_function_lines_name_always_inline_and_a_cost_at_the_threshold():
    """Seen on QuickJS's explain: "cost None/thr None" for always_inline callees (LLVM's remark says
    cost=always) and "cost 75 > threshold 75" (the inliner declines at cost >= threshold)."""
    from autopass_cc.tuning.evidence import describe_function
    f = {"inlined": [{"callee": "js_dup", "line": 3, "cost": None, "threshold": None},
                     {"callee": "sq", "line": 4, "cost": 20, "threshold": 375}],
         "not_inlined": [{"callee": "big", "line": 9, "cost": 75, "threshold": 75, "reason": "TooCostly"}],
         "counts": {"inlined": 2}}
    text = "\n".join(describe_function("f", f))
    assert "inlined: js_dup(always), sq(cost 20/thr 375)" in text and "None" not in text
    assert "NOT inlined L9: big TooCostly cost 75 >= threshold 75" in text
