"""Evidence rules of the offline proposer: optimization remarks and IR statistics -> Edits.

:func:`candidate_edits` reads one TU's evidence (tuning/evidence.py) and proposes single edits
(Edit, tuning/proposers/base.py), each with a rationale quoting the evidence and the ``source``
of the rule (an LLVM 19 source file, remark or default).  Edits are ordered by expected value:

    score = weight of the function the evidence is about  x  strength of the rule

The weight is the function's share of the run (0..1) when ``hot_functions`` carries shares,
else ``0.5 / (rank + 1)`` for the rank in the hot list; with no hot list every function weighs
0.2 (``autopass-cc explain`` without a profile).  Functions absent from a given hot list are
ignored.  The strengths (``STRENGTH``) are priors on how often a rule's edit pays off, set from
the remark's directness: a remark that names the blocking threshold (inline TooCostly with cost
and threshold, SLP NotBeneficial with cost) is strongest; heuristics on IR shape are weakest.

Every edit names a knob of ``pipeline.KNOBS`` or a family of ``pipeline.FLAG_FAMILIES`` with a
value in range (checked by applying it and validating with the most permissive Policy; whether
the session's policy allows unsafe-math or ISA flags is the session's check).

:func:`pass_pipeline_edits` proposes edited versions of the O3 pass-pipeline string, each checked
by :func:`validate_passes` (``opt-19 -passes=... -disable-output`` on a tiny module).
"""

from __future__ import annotations

import math
import re
import subprocess

from ..errors import PipelineError
from ..pipeline import FLAG_FAMILIES, KNOBS, Pipeline, Policy, validate
from .proposers.base import Edit

#: Prior strength of each rule (0..1); see the module docstring.
STRENGTH = {
    "inline-too-costly-near": 0.55,     # cost <= 1.25 x threshold
    "inline-too-costly-mid": 0.40,      # <= 2 x
    "inline-too-costly-far": 0.25,      # <= 4 x
    "inline-too-costly-all": 0.30,      # one threshold covering every hot too-costly site
    "vec-not-beneficial": 0.50,
    "vec-not-beneficial-wide": 0.30,
    "vec-low-trip-count": 0.50,
    "vec-memchecks": 0.45,
    "vec-memchecks-total": 0.30,
    "vec-unsafe-dep-distribute": 0.30,
    "vec-fp-reorder-fastmath": 0.30,
    "vec-libcall-errno": 0.45,
    "vec-interleaved": 0.30,
    "vec-forced-generic": 0.15,
    "vec-ic1-interleave2": 0.35,
    "vec-ic1-interleave4": 0.25,
    "vec-spills-ic1": 0.25,
    "vec-wider": 0.20,
    "vec-native": 0.30,
    "unroll-tti-refused": 0.35,
    "unroll-threshold-up": 0.30,
    "unroll-runtime": 0.25,
    "unroll-partial-threshold": 0.25,
    "unroll-count": 0.15,
    "dispatch-dfa": 0.45,
    "dispatch-jump-threading": 0.25,
    "dispatch-tail-dup": 0.15,
    "slp-near-miss": 0.35,
    "slp-near-miss-with-loops": 0.15,
    "size-inline-down": 0.20,
    "size-unroll-down": 0.20,
    "size-interleave1": 0.20,
    "licm-versioning": 0.15,
    "nest-interchange": 0.20,
    "nest-unroll-and-jam": 0.15,
    "nest-flatten": 0.10,
    "generic-o3": 0.20,
    "generic-o3-from-low": 0.50,
    "generic-o2": 0.12,
    "generic-native": 0.25,
    "generic-mtune": 0.10,
    "generic-unroll-loops": 0.05,
    "generic-align-functions": 0.05,
}

#: libm functions that become vector instructions once ``-fno-math-errno`` lets them be treated as
#: pure (clang: math builtins are ``const`` only without errno; TargetLibraryInfo vector mappings).
LIBM = {"sqrt", "sqrtf", "exp", "expf", "exp2", "exp2f", "log", "logf", "log2", "log2f", "log10", "log10f", "pow",
        "powf", "sin", "sinf", "cos", "cosf", "tan", "tanf", "fmod", "fmodf", "hypot", "hypotf", "cbrt", "cbrtf"}

MAX_EDITS = 32


def _knob_int(current: Pipeline, name: str) -> int:
    v = dict(current.knobs).get(name)
    try:
        return int(v) if v is not None else int(KNOBS[name].default)
    except (TypeError, ValueError):
        return int(KNOBS[name].default)


def _inline_base(current: Pipeline, evidence: dict) -> int:
    """The inliner's base threshold for this compile: the ``inline-threshold`` knob when set,
    else the opt level's default (InlineCost.cpp computeThresholdFromOptLevels: 250 at -O3
    (OptAggressiveThreshold), 50 at -Os, 5 at -Oz, else the inline-threshold default 225).  An
    explicit ``-inline-threshold`` replaces that default at every level."""
    knobs = dict(current.knobs)
    if "inline-threshold" in knobs:
        return _knob_int(current, "inline-threshold")
    level = current.opt_level or evidence.get("user_opt_level")
    return {"O3": 250, "Os": 50, "Oz": 5}.get(level or "", int(KNOBS["inline-threshold"].default))


def _threshold_step(base: int, need: int) -> int:
    """The smallest ``base`` x 1.1^k (k >= 1, rounded up) that is at least ``need``: the thresholds
    proposed for call sites of similar cost coincide, and one trial tests them together (the
    collector adds their scores).  Measured: a session on sqlite3.c (-O2, base 225) proposed
    inline-threshold 239, 241, 244, ..., 260 as nine trials, four of which built the same binary;
    on this ladder they are 248 and 273."""
    v = max(1, int(base))
    while True:
        v = max(v + 1, math.ceil(v * 1.1))
        if v >= need:
            return v


def _weights(evidence: dict, hot_functions) -> tuple[dict, dict]:
    """``(weight by function, label by function)``; see the module docstring."""
    funcs = evidence.get("functions") or {}
    w, label = {}, {}
    hot = []
    for h in hot_functions or ():
        if isinstance(h, (tuple, list)):
            hot.append((str(h[0]), float(h[1]) if len(h) > 1 and h[1] is not None else None))
        else:
            hot.append((str(h), None))
    if not hot:
        for name in funcs:
            w[name], label[name] = 0.2, "no profile"
        return w, label
    for rank, (name, share) in enumerate(hot):
        if name in w:
            continue
        w[name] = share if share is not None else 0.5 / (rank + 1)
        label[name] = f"hot #{rank + 1}" + (f", {share * 100:.1f}% of run" if share is not None else "")
    return w, label


def _q(msg: str, n: int = 140) -> str:
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


class _Collector:
    def __init__(self, current: Pipeline):
        self.current = current
        self.best: dict = {}
        self._policy = Policy(allow_unsafe_math=True, allow_native=True)

    def add(self, score: float, kind: str, name: str, value, rationale: str, source: str) -> None:
        if score <= 0:
            return
        if kind == "knob":
            value = str(value).lower() if isinstance(value, bool) else str(value)
            if name not in KNOBS:
                return
        elif kind == "flag":
            if name not in FLAG_FAMILIES or value not in FLAG_FAMILIES[name].choices:
                return
        edit = Edit(kind, name, value, rationale, source)
        try:
            p = edit.apply(self.current)
            validate(p, self._policy)
        except (PipelineError, ValueError):
            return
        if p == self.current:
            return
        key = (kind, name, str(p.to_dict()))
        old = self.best.get(key)
        if old is None:
            self.best[key] = [score, edit]
        else:
            if score > old[0]:
                old[1] = Edit(kind, name, old[1].value, rationale, source)
            old[0] = min(1.0, old[0] + score * 0.5) if score <= old[0] else min(1.0, score + old[0] * 0.5)

    def result(self) -> list[tuple[float, Edit]]:
        out = sorted(((s, e) for s, e in self.best.values()), key=lambda x: (-x[0], x[1].kind, x[1].name, str(x[1].value)))
        return out[:MAX_EDITS]


def scored_edits(evidence: dict, hot_functions: list, current: Pipeline) -> list[tuple[float, Edit]]:
    """:func:`candidate_edits` with their scores: ``[(score, Edit)]``, best first."""
    funcs = evidence.get("functions") or {}
    w, label = _weights(evidence, hot_functions)
    col = _Collector(current)
    cur_inline = _inline_base(current, evidence)
    cur_unroll = _knob_int(current, "unroll-threshold")

    too_costly_sites = []
    for fn, f in funcs.items():
        c = f.get("counts") or {}
        ir = f.get("ir") or {}
        # --- inlining: evaluated from the caller's and the callee's weight -------------------
        for site in f.get("not_inlined") or ():
            if site.get("reason") != "TooCostly":
                continue
            cost, thr = site.get("cost"), site.get("threshold")
            if cost is None or thr is None or cost <= thr:
                continue
            weight = max(w.get(fn, 0.0), w.get(site.get("callee"), 0.0))
            if weight <= 0:
                continue
            ratio = cost / thr if thr > 0 else float("inf")
            # The remark's threshold is the base threshold after bonuses and penalties
            # (InlineCost.cpp: single-BB and vector bonuses scale with it, others are constants),
            # so scale proportionally and also cover the absolute gap; then a margin of 8, rounded
            # up to the ladder (_threshold_step).
            need = max(cur_inline + (cost - thr), math.ceil(cur_inline * ratio) if thr > 0 else 0)
            value = _threshold_step(cur_inline, need + 8)
            if value > KNOBS["inline-threshold"].hi:
                continue
            strength = (STRENGTH["inline-too-costly-near"] if ratio <= 1.25 else STRENGTH["inline-too-costly-mid"]
                        if ratio <= 2 else STRENGTH["inline-too-costly-far"] if ratio <= 4 else 0.0)
            # The weight may be the callee's: say whose it is (QuickJS's rationale gave a caller
            # that never ran the label of the hot function it calls).
            whose = (label.get(fn) or (f"calls {site.get('callee')}, {label[site.get('callee')]}"
                                       if site.get("callee") in label else ""))
            why = (f"{fn} ({whose}): '{site.get('callee')}' not inlined into "
                   f"'{fn}' at line {site.get('line') or '?'} because too costly to inline (cost={cost}, threshold={thr}); "
                   f"inline-threshold {cur_inline} -> {value} lets it through")
            col.add(weight * strength, "knob", "inline-threshold", value, why,
                    "LLVM inline remark TooCostly (Cost, Threshold); InlineCost.cpp: inline-threshold default 225, "
                    "250 at -O3")
            if strength > 0:
                too_costly_sites.append((weight, value, fn, site))

        weight = w.get(fn, 0.0)
        if weight <= 0:
            continue
        tag = f"{fn} ({label.get(fn, '')})"

        # --- loop vectorizer ---------------------------------------------------------------------
        for loop in f.get("not_vectorized") or ():
            reasons = loop.get("reasons") or []
            text = " ".join(f"{r.get('name', '')} {r.get('message', '')}" for r in reasons)
            src = "LLVM LoopVectorize remark"

            def _where(pattern: str = "") -> str:
                """Location plus the quoted reason matching ``pattern`` (else the first one)."""
                hit = next((r for r in reasons if pattern and re.search(pattern, f"{r.get('name', '')} "
                                                                          f"{r.get('message', '')}", re.I)), None)
                hit = hit or (reasons[0] if reasons else {"message": "loop not vectorized"})
                return f"{tag}: line {loop.get('line') or '?'} '{_q(hit.get('message', ''))}'"

            if "VectorizationNotBeneficial" in text or "vectorization is not beneficial" in text:
                where = _where("vectorization is not beneficial|VectorizationNotBeneficial")
                col.add(weight * STRENGTH["vec-not-beneficial"], "knob", "force-vector-width", 4,
                        where + " -> force VF 4 (legal, only the cost model declined)",
                        src + " 'the cost-model indicates that vectorization is not beneficial'; LoopVectorize.cpp force-vector-width")
                col.add(weight * STRENGTH["vec-not-beneficial-wide"], "knob", "force-vector-width", 8,
                        where + " -> force VF 8", src + " 'the cost-model indicates that vectorization is not beneficial'")
            if "LowTripCount" in text or "trip count" in text.lower():
                where = _where("LowTripCount|trip count")
                col.add(weight * STRENGTH["vec-low-trip-count"], "knob", "vectorizer-min-trip-count", 4,
                        where + " -> vectorizer-min-trip-count 16 -> 4",
                        src + " LowTripCount; LoopVectorize.cpp: vectorizer-min-trip-count default 16")
            if re.search(r"memory check|pointer check|memchecks|runtime check|TooManyMemoryChecks|CantReorderMemOps",
                         text, re.I):
                where = _where("memory check|pointer check|memchecks|runtime check|TooManyMemoryChecks|CantReorderMemOps")
                col.add(weight * STRENGTH["vec-memchecks"], "knob", "runtime-memory-check-threshold", 32,
                        where + " -> allow up to 32 runtime alias checks",
                        src + " on memory checks; LoopAccessAnalysis.cpp: runtime-memory-check-threshold default 8")
                col.add(weight * STRENGTH["vec-memchecks-total"], "knob", "vectorize-memory-check-threshold", 512,
                        where + " -> allow more runtime memory checks in total",
                        src + " on memory checks; LoopVectorize.cpp: vectorize-memory-check-threshold default 128")
            if "UnsafeDep" in text:
                where = _where("UnsafeDep")
                col.add(weight * STRENGTH["vec-unsafe-dep-distribute"], "knob", "enable-loop-distribute", "true",
                        where + " -> loop distribution may split off the dependent part",
                        src + " UnsafeDep 'Use #pragma clang loop distribute(enable) to allow loop distribution'; "
                        "LoopDistribute.cpp enable-loop-distribute")
            if "CantReorderFPOps" in text or "reorder floating-point" in text:
                where = _where("CantReorderFPOps|reorder floating-point")
                col.add(weight * STRENGTH["vec-fp-reorder-fastmath"], "flag", "fast-math", "on",
                        where + " -> -ffast-math allows reassociating the FP reduction (unsafe math: needs the "
                        "allow_unsafe_math opt-in; output is verified)",
                        src + " CantReorderFPOps 'cannot prove it is safe to reorder floating-point operations'")
            if "CantVectorizeLibcall" in text or "call instruction cannot be vectorized" in text:
                where = _where("CantVectorizeLibcall|call instruction cannot be vectorized")
                libm = sorted(set(ir.get("callees") or ()) & LIBM)
                if libm:
                    col.add(weight * STRENGTH["vec-libcall-errno"], "flag", "math-errno", "off",
                            where + f" and the loop calls {', '.join(libm)}: -fno-math-errno makes them vectorizable",
                            src + " CantVectorizeLibcall; clang: math builtins are pure only with -fno-math-errno")
            if re.search(r"interleav|strided", text, re.I):
                where = _where("interleav|strided")
                col.add(weight * STRENGTH["vec-interleaved"], "knob", "enable-interleaved-mem-accesses", "true",
                        where + " -> vectorize interleaved (strided) access groups",
                        src + "; LoopVectorize.cpp enable-interleaved-mem-accesses")
            where = _where()
            col.add(weight * STRENGTH["vec-forced-generic"], "knob", "force-vector-width", 4,
                    where + " -> force VF 4 (applies where the loop is legal to vectorize)",
                    src + " MissedDetails 'loop not vectorized'")
        for loop in f.get("vectorized") or ():
            vf, ic = loop.get("vf"), loop.get("ic")
            notes = " ".join(n.get("message", "") for n in loop.get("notes") or ())
            where = f"{tag}: line {loop.get('line') or '?'} 'vectorized loop (vectorization width: {vf}, interleaved count: {ic})'"
            if ic == 1:
                quote = " and 'the cost-model indicates that interleaving is not beneficial'" if "interleaving is not beneficial" in notes else ""
                col.add(weight * STRENGTH["vec-ic1-interleave2"], "knob", "force-vector-interleave", 2,
                        where + quote + " -> interleave 2",
                        "LLVM LoopVectorize remark 'the cost-model indicates that interleaving is not beneficial'; "
                        "force-vector-interleave")
                col.add(weight * STRENGTH["vec-ic1-interleave4"], "knob", "force-vector-interleave", 4,
                        where + quote + " -> interleave 4", "LLVM LoopVectorize remark Vectorized (InterleaveCount 1)")
            elif ic and ic > 1 and (c.get("loop_spills", 0) + c.get("loop_reloads", 0)) > 0:
                col.add(weight * STRENGTH["vec-spills-ic1"], "knob", "force-vector-interleave", 1,
                        where + f" with {c.get('loop_spills', 0)} spills / {c.get('loop_reloads', 0)} reloads in loops"
                        " -> interleave 1 lowers register pressure",
                        "LLVM regalloc remark LoopSpillReloadCopies; LoopVectorize.cpp force-vector-interleave")
            if vf and vf <= 4:
                col.add(weight * STRENGTH["vec-wider"], "knob", "force-vector-width", vf * 2,
                        where + f" -> try VF {vf * 2}", "LLVM LoopVectorize remark Vectorized (VectorizationFactor)")
                col.add(weight * STRENGTH["vec-native"], "flag", "march", "native",
                        where + " with the default x86-64 ISA (128-bit SSE2): -march=native may allow 256-bit vectors "
                        "(needs allow_native; FP contraction is verified)",
                        "LLVM LoopVectorize remark Vectorized; clang -march=native")

        # --- unroller ---------------------------------------------------------------------------
        loops = ir.get("loops", 0)
        unrolled = f.get("unrolled") or []
        n_vec = len(f.get("vectorized") or [])
        n_part = sum(1 for u in unrolled if u.get("kind") in ("partial", "runtime"))
        refused = [u for u in f.get("not_unrolled") or () if u.get("reason") == "DontUnroll"]
        if refused:
            where = f"{tag}: line {refused[0].get('line') or '?'} '{_q(refused[0].get('message', ''))}'"
            col.add(weight * STRENGTH["unroll-tti-refused"], "knob", "unroll-runtime", "true",
                    where + " -> unroll-runtime overrides the target's advice",
                    "LLVM TTI remark DontUnroll; LoopUnrollPass.cpp unroll-runtime overrides UP.Runtime")
            col.add(weight * STRENGTH["unroll-tti-refused"] * 0.8, "knob", "unroll-allow-partial", "true",
                    where + " -> unroll-allow-partial overrides the target's advice",
                    "LLVM TTI remark DontUnroll; LoopUnrollPass.cpp unroll-allow-partial overrides UP.Partial")
        # Loops left in the IR: a vectorized loop leaves a vector body and a scalar remainder.
        left = loops - 2 * n_vec - n_part
        if loops and left > 0:
            where = (f"{tag}: {loops} loops in the optimized IR, {n_vec} vectorized, {n_part} partially/runtime "
                     f"unrolled: about {left} loops were left alone by the unroller")
            value = min(KNOBS["unroll-threshold"].hi, max(600, cur_unroll * 2))
            col.add(weight * STRENGTH["unroll-threshold-up"], "knob", "unroll-threshold", value,
                    where + f" -> unroll-threshold {cur_unroll} -> {value}",
                    "LoopUnrollPass.cpp: unroll-threshold default 300 at -O3 (no remark when the cost model declines)")
            col.add(weight * STRENGTH["unroll-runtime"], "knob", "unroll-runtime", "true",
                    where + " -> unroll loops with run-time trip counts", "LoopUnrollPass.cpp unroll-runtime")
        small = [u for u in unrolled if u.get("kind") in ("partial", "runtime") and (u.get("count") or 0) <= 2]
        if small:
            u = small[0]
            where = f"{tag}: line {u.get('line') or '?'} 'unrolled loop by a factor of {u.get('count')}'"
            col.add(weight * STRENGTH["unroll-partial-threshold"], "knob", "unroll-partial-threshold", 600,
                    where + " -> a larger partial-unroll budget allows factor 4+",
                    "LLVM loop-unroll remark PartialUnrolled (UnrollCount); LoopUnrollPass.cpp unroll-partial-threshold "
                    "(target default = LoopMicroOpBufferSize)")
            col.add(weight * STRENGTH["unroll-count"], "knob", "unroll-count", 4,
                    where + " -> force factor 4 (applies to every loop of the TU)",
                    "LLVM loop-unroll remark PartialUnrolled; LoopUnrollPass.cpp unroll-count")

        # --- switch-dispatch loops (interpreters, state machines) -------------------------------
        cases = ir.get("max_switch_cases_in_loop", 0)
        if cases >= 6 or ir.get("indirectbr", 0):
            where = (f"{tag}: a loop around a {cases}-way switch" if cases >= 6 else f"{tag}: indirectbr dispatch") + \
                    f" ({ir.get('blocks', 0)} blocks)"
            col.add(weight * STRENGTH["dispatch-dfa"], "knob", "enable-dfa-jump-thread", "true",
                    where + " -> DFA jump threading threads the state transitions",
                    "DFAJumpThreading.cpp (off by default in LLVM 19: enable-dfa-jump-thread)")
            col.add(weight * STRENGTH["dispatch-jump-threading"], "knob", "jump-threading-threshold", 12,
                    where + " -> jump threading may duplicate larger blocks (6 -> 12)",
                    "JumpThreading.cpp: jump-threading-threshold default 6")
            col.add(weight * STRENGTH["dispatch-tail-dup"], "knob", "tail-dup-size", 6,
                    where + " -> tail-duplicate the dispatch into each case (2 -> 6)",
                    "TailDuplicator.cpp: tail-dup-size default 2")

        # --- SLP ------------------------------------------------------------------------------------
        near = [s for s in f.get("slp_missed") or () if s.get("cost") is not None and s["cost"] >= 0
                and s["cost"] - (s.get("threshold") or 0) <= 4]
        if near:
            s = min(near, key=lambda s: s["cost"])
            value = -s["cost"] - 1   # SLPVectorizer.cpp vectorizes when Cost < -slp-threshold
            strength = STRENGTH["slp-near-miss"] if not n_vec else STRENGTH["slp-near-miss-with-loops"]
            col.add(weight * strength, "knob", "slp-threshold", value,
                    f"{tag}: line {s.get('line') or '?'} 'vectorization was possible but not beneficial with cost {s['cost']}' "
                    f"-> slp-threshold {value} accepts it", "LLVM slp-vectorizer remark NotBeneficial (Cost, Treshold); "
                    "SLPVectorizer.cpp: slp-threshold default 0, vectorize if Cost < -slp-threshold")

        # --- code size / register pressure --------------------------------------------------------
        spills = c.get("spills", 0) + c.get("reloads", 0)
        if ir.get("instructions", 0) > 3000 or spills >= 16:
            where = f"{tag}: {ir.get('instructions', 0)} IR instructions, {spills} spills+reloads"
            low = max(50, int(cur_inline * 0.6))
            col.add(weight * STRENGTH["size-inline-down"], "knob", "inline-threshold", low,
                    where + f" -> inline less ({cur_inline} -> {low})", "InlineCost.cpp: inline-threshold default 225")
            lowu = max(50, cur_unroll // 2)
            col.add(weight * STRENGTH["size-unroll-down"], "knob", "unroll-threshold", lowu,
                    where + f" -> unroll less ({cur_unroll} -> {lowu})", "LoopUnrollPass.cpp: unroll-threshold 300 at -O3")
            if n_vec:
                col.add(weight * STRENGTH["size-interleave1"], "knob", "force-vector-interleave", 1,
                        where + " -> no interleaving of vectorized loops", "LLVM regalloc remark SpillReloadCopies")

        # --- LICM ---------------------------------------------------------------------------------
        if c.get("licm_missed", 0) >= 4 and loops:
            col.add(weight * STRENGTH["licm-versioning"], "knob", "enable-loop-versioning-licm", "true",
                    f"{tag}: {c['licm_missed']} x 'failed to move load with loop-invariant address because the loop "
                    "may invalidate its value' -> version the loop on a no-alias check",
                    "LLVM licm remark LoadWithLoopInvariantAddressInvalidated; LoopVersioningLICM.cpp")

        # --- loop nests -----------------------------------------------------------------------------
        if ir.get("max_loop_depth", 0) >= 2:
            where = f"{tag}: loop nest of depth {ir['max_loop_depth']}"
            col.add(weight * STRENGTH["nest-interchange"], "knob", "enable-loopinterchange", "true",
                    where + " -> loop interchange may make the inner loop stride-1",
                    "LoopInterchange.cpp (off by default in LLVM 19: enable-loopinterchange)")
            col.add(weight * STRENGTH["nest-unroll-and-jam"], "knob", "enable-unroll-and-jam", "true",
                    where + " -> unroll-and-jam the outer loop", "LoopUnrollAndJamPass.cpp (enable-unroll-and-jam)")
            col.add(weight * STRENGTH["nest-flatten"], "knob", "enable-loop-flatten", "true",
                    where + " -> flatten the nest", "LoopFlatten.cpp (enable-loop-flatten)")

    # One threshold that covers every hot too-costly site (cost at most 4x its threshold).
    if len(too_costly_sites) > 1:
        value = max(v for _, v, _, _ in too_costly_sites)
        total = min(1.0, sum(wt for wt, _, _, _ in too_costly_sites))
        names = ", ".join(sorted({f"{s.get('callee')}->{fn}" for _, _, fn, s in too_costly_sites})[:6])
        col.add(total * STRENGTH["inline-too-costly-all"], "knob", "inline-threshold", value,
                f"{len(too_costly_sites)} hot call sites too costly to inline ({names}) -> inline-threshold {value} "
                "covers them all", "LLVM inline remark TooCostly; InlineCost.cpp: inline-threshold default 225")

    # --- generic candidates (TU level) -------------------------------------------------------------
    tu_w = min(1.0, sum(w.get(n, 0.0) for n in funcs)) if w else 0.0
    tu_w = tu_w or 0.2
    level = current.opt_level or evidence.get("user_opt_level")
    if level in (None, "O0", "O1", "Os", "Oz"):
        col.add(tu_w * STRENGTH["generic-o3-from-low"], "opt_level", "", "O3",
                f"the TU is compiled at {level or '-O0'}; -O3 is the speed-oriented level", "clang -O3")
    elif level == "O2":
        col.add(tu_w * STRENGTH["generic-o3"], "opt_level", "", "O3", "the TU is compiled at -O2; try -O3", "clang -O3")
    else:
        col.add(tu_w * STRENGTH["generic-o2"], "opt_level", "", "O2",
                "-O3 is not always faster than -O2 (larger code, more aggressive unrolling)", "clang -O2")
    col.add(tu_w * STRENGTH["generic-native"], "flag", "march", "native",
            "host ISA (needs allow_native; output verified)", "clang -march=native")
    col.add(tu_w * STRENGTH["generic-mtune"], "flag", "mtune", "native", "scheduling model of the host",
            "clang -mtune=native")
    col.add(tu_w * STRENGTH["generic-unroll-loops"], "flag", "unroll-loops", "on", "explicit -funroll-loops",
            "clang -funroll-loops")
    if any((f.get("ir") or {}).get("loops") for n, f in funcs.items() if w.get(n)):
        col.add(tu_w * STRENGTH["generic-align-functions"], "flag", "align-functions", "a32",
                "hot functions with loops: align functions to 32 bytes (code placement noise is real; verified "
                "by measurement)", "clang -falign-functions=32")
    return col.result()


def candidate_edits(evidence: dict, hot_functions: list, current: Pipeline) -> list[Edit]:
    """Single edits suggested by ``evidence`` (tuning/evidence.py :func:`collect` output) for the
    TU whose pipeline is ``current``, best first (at most MAX_EDITS).

    ``hot_functions``: function names hottest first, or ``(name, share)`` pairs (share 0..1).
    Each Edit carries a ``rationale`` quoting the remark or IR fact and a ``source``.  Edits that
    would not change ``current`` are left out.  Rules (strengths in STRENGTH):

    * inline TooCostly at a hot call site (cost C > threshold T) -> ``inline-threshold`` just above
      what lets C through, scaled from the current base threshold (InlineCost.cpp: 225, 250 at
      -O3; see _inline_base), on a 10 % ladder (_threshold_step); one more edit covering every hot
      site;
    * hot loop not vectorized -> by reason: cost model ``force-vector-width`` 4/8; low trip count
      ``vectorizer-min-trip-count`` 4; memory checks ``runtime-memory-check-threshold`` /
      ``vectorize-memory-check-threshold``; unsafe dependence ``enable-loop-distribute``; FP
      reordering ``-ffast-math`` (unsafe, opt-in); libm call ``-fno-math-errno``; strided accesses
      ``enable-interleaved-mem-accesses``;
    * hot loop vectorized with interleave 1 -> ``force-vector-interleave`` 2/4; with spills in
      loops -> interleave 1; VF <= 4 -> ``force-vector-width`` 2xVF, ``-march=native``;
    * loops left alone by the unroller -> ``unroll-threshold`` x2, ``unroll-runtime``; TTI
      DontUnroll -> ``unroll-runtime`` / ``unroll-allow-partial``; partial factor <= 2 ->
      ``unroll-partial-threshold``, ``unroll-count`` 4;
    * a loop around a switch of 6+ cases or an indirectbr -> ``enable-dfa-jump-thread``,
      ``jump-threading-threshold`` 12, ``tail-dup-size`` 6;
    * SLP NotBeneficial with cost C near the threshold -> ``slp-threshold`` -C-1 (stronger when
      the function has no vectorized loop);
    * code size (> 3000 IR instructions) or 16+ spills/reloads -> lower ``inline-threshold`` and
      ``unroll-threshold``, interleave 1;
    * 4+ LICM loads blocked by possible aliasing -> ``enable-loop-versioning-licm``;
    * loop nests -> ``enable-loopinterchange``, ``enable-unroll-and-jam``, ``enable-loop-flatten``;
    * generic: -O3 (from lower levels) or -O2 (from -O3), -march/-mtune=native, -funroll-loops,
      -falign-functions=32."""
    return [e for _, e in scored_edits(evidence, hot_functions, current)]


# ----------------------------------------------------------------------------------------------
# Pass-pipeline edits
# ----------------------------------------------------------------------------------------------

#: A small module with a counted loop, a call and a switch, so that loop, inliner and CFG passes
#: all have something to run on when a pipeline string is validated.
_TINY_MODULE = r"""
define internal i32 @g(i32 %x) {
  %y = mul i32 %x, 3
  ret i32 %y
}
define i32 @f(ptr %a, i32 %n) {
entry:
  %c0 = icmp sgt i32 %n, 0
  br i1 %c0, label %loop, label %exit
loop:
  %i = phi i32 [ 0, %entry ], [ %i1, %next ]
  %s = phi i32 [ 0, %entry ], [ %s2, %next ]
  %p = getelementptr inbounds i32, ptr %a, i32 %i
  %v = load i32, ptr %p
  switch i32 %v, label %dflt [ i32 0, label %c1
                               i32 1, label %c2 ]
c1:
  %t1 = call i32 @g(i32 %v)
  br label %next
c2:
  %t2 = add i32 %v, 7
  br label %next
dflt:
  br label %next
next:
  %t = phi i32 [ %t1, %c1 ], [ %t2, %c2 ], [ %v, %dflt ]
  %s2 = add i32 %s, %t
  %i1 = add nuw nsw i32 %i, 1
  %c = icmp slt i32 %i1, %n
  br i1 %c, label %loop, label %exit
exit:
  %r = phi i32 [ 0, %entry ], [ %s2, %next ]
  ret i32 %r
}
"""

_VALID: dict = {}


def validate_passes(passes: str) -> str | None:
    """None when ``opt-19 -passes=<passes> -disable-output`` accepts the string and runs it on a
    tiny module, else opt's error message (first 300 characters).  Cached per process; the
    string is passed as one argv element (no shell)."""
    if passes in _VALID:
        return _VALID[passes]
    from ..toolchain import llvm_tool
    if not passes or passes.startswith("-"):
        err = "empty pass pipeline" if not passes else "a pass pipeline cannot start with '-'"
    else:
        try:
            r = subprocess.run([llvm_tool("opt"), f"-passes={passes}", "-disable-output"],
                               input=_TINY_MODULE.encode(), capture_output=True, timeout=120)
            err = None if r.returncode == 0 else (r.stderr.decode(errors="replace").strip() or
                                                 f"opt exited with {r.returncode}")[:300]
        except subprocess.TimeoutExpired:
            err = "opt timed out on the tiny module"
    _VALID[passes] = err
    return err


def _sub_token(s: str, token: str, repl: str, occurrence: int = 1) -> str | None:
    """Replace the ``occurrence``-th exact pass token (delimited by ``,``/``(``/``)``/ends)."""
    pat = re.compile(r"(?<=[,(])" + re.escape(token) + r"(?=[,)])|^" + re.escape(token) + r"(?=[,)])")
    ms = list(pat.finditer(s))
    if len(ms) < occurrence:
        return None
    m = ms[occurrence - 1]
    out = s[: m.start()] + repl + s[m.end():]
    return out.replace(",,", ",").replace("(,", "(").replace(",)", ")")


#: (name, token, replacement, occurrence, rationale, source)
_PASS_EDITS = [
    ("unroll-runtime-partial", "loop-unroll<O3>", "loop-unroll<O3;partial;runtime>", 1,
     "late loop unroller with partial and runtime unrolling forced on (overrides the target's advice)",
     "PassBuilder.cpp parseLoopUnrollOptions: partial, runtime"),
    ("unroll-peel-upperbound", "loop-unroll<O3>", "loop-unroll<O3;peeling;upperbound>", 1,
     "late loop unroller with peeling and upper-bound unrolling", "PassBuilder.cpp parseLoopUnrollOptions"),
    ("drop-late-unroll", "loop-unroll<O3>", "", 1,
     "no late loop unrolling (smaller loops; the vectorizer's interleaving stays)", "PassBuilderPipelines.cpp addVectorPasses"),
    ("unroll-o2", "loop-unroll<O3>", "loop-unroll<O2>", 1,
     "late loop unroller with the -O2 budget (unroll-threshold 150 instead of 300)",
     "LoopUnrollPass.cpp: unroll-threshold-default 150, -aggressive 300 at O3"),
    ("no-interleave", "loop-vectorize<no-interleave-forced-only;no-vectorize-forced-only;>",
     "loop-vectorize<interleave-forced-only;no-vectorize-forced-only;>", 1,
     "loop vectorizer without interleaving (lower register pressure)", "LoopVectorize.cpp LoopVectorizeOptions"),
    ("drop-slp", "slp-vectorizer", "", 1, "no SLP vectorization", "PassBuilderPipelines.cpp addVectorPasses"),
    ("dfa-jump-threading", "jump-threading", "dfa-jump-threading,jump-threading", 2,
     "DFA jump threading before the second jump threading, where enable-dfa-jump-thread puts it",
     "PassBuilderPipelines.cpp buildFunctionSimplificationPipeline (EnableDFAJumpThreading)"),
    ("loop-interchange", "loop-deletion,loop-unroll-full", "loop-deletion,loop-interchange,loop-unroll-full", 1,
     "loop interchange in the simplification loop pipeline, where enable-loopinterchange puts it",
     "PassBuilderPipelines.cpp buildFunctionSimplificationPipeline (EnableLoopInterchange)"),
    ("unroll-and-jam", "loop-unroll<O3>", "loop(loop-unroll-and-jam),loop-unroll<O3>", 1,
     "unroll-and-jam before the late unroller, where enable-unroll-and-jam puts it",
     "PassBuilderPipelines.cpp addVectorPasses (EnableUnrollAndJam)"),
    ("gvn-after-unroll", "loop-unroll<O3>", "loop-unroll<O3>,gvn<>", 1,
     "a second GVN after the late unroller (redundant loads across unrolled iterations)",
     "GVN.cpp; repeating a pass of the O3 pipeline"),
]


def pass_pipeline_edits(o3: str) -> list[Edit]:
    """Edited versions of the O3 pass pipeline ``o3`` (from evidence.o3_pipeline()) as ``passes``
    Edits, each accepted by :func:`validate_passes`: late unroller with partial/runtime forced,
    with peeling/upper bound, at the O2 budget, or dropped; vectorizer without interleaving; SLP
    dropped; DFA jump threading, loop interchange, unroll-and-jam inserted where their LLVM 19
    enable-flags would put them; a second GVN after the late unroller.  Edits whose token is not
    found (another LLVM version) or that opt rejects are left out."""
    out = []
    for name, token, repl, occ, why, src in _PASS_EDITS:
        s = o3
        if "," in token:  # a two-pass sequence: plain substring, first occurrence
            if token not in s:
                continue
            s = s.replace(token, repl, 1)
        else:
            s = _sub_token(s, token, repl, occ)
            if s is None:
                continue
        if s == o3 or validate_passes(s) is not None:
            continue
        out.append(Edit("passes", name, s, f"O3 pipeline with {why}", src))
    return out
