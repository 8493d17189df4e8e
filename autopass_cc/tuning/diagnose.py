"""Why did a candidate lose (or produce wrong output)?  A diff of two evidence dicts.

:func:`diagnose` compares the incumbent's and the candidate's evidence (tuning/evidence.py) for
the hot functions: call sites inlined or not, loops vectorized (and with which VF/IC), loops
unrolled, SLP results, spills, and IR statistics.  :func:`blamed_edits` then names the edits of
the proposal most likely responsible, by which optimizer component changed.
"""

from __future__ import annotations

#: IR statistics compared (evidence "ir" keys).
IR_KEYS = ("instructions", "blocks", "loops", "calls", "vector_instructions", "loads", "stores", "phis")
#: Relative IR growth above which a function "grew" (and below whose negative it "shrank").
SIZE_CHANGE = 0.20
MAX_ITEMS = 12


def _fn(ev: dict, name: str) -> dict | None:
    return (ev.get("functions") or {}).get(name)


def _inl_set(f: dict | None) -> set:
    return {i.get("callee") for i in (f or {}).get("inlined") or ()}


def _vec_map(f: dict | None) -> dict:
    return {v.get("line"): (v.get("vf"), v.get("ic")) for v in (f or {}).get("vectorized") or ()}


def _unroll_map(f: dict | None) -> dict:
    out = {}
    for u in (f or {}).get("unrolled") or ():
        out.setdefault(u.get("line"), (u.get("kind"), u.get("count")))
    return out


def _counts(f: dict | None) -> dict:
    return (f or {}).get("counts") or {}


def diff_function(inc: dict | None, cand: dict | None) -> dict:
    """Differences for one function between incumbent ``inc`` and candidate ``cand`` (either may
    be None: the function does not exist on that side).  Keys present only when non-empty:
    ``inlined_gained`` / ``inlined_lost`` (callee names), ``vectorized_gained`` /
    ``vectorized_lost`` ([{"line", "vf", "ic"}]), ``vf_ic_changed`` ([{"line", "before": [vf, ic],
    "after": [vf, ic]}]), ``unroll_changed`` ([{"line", "before": [kind, count] | None, "after":
    ...}]), ``slp_delta`` (int), ``spills_delta`` (spills + reloads, int), ``ir_delta`` ({key:
    candidate - incumbent}), ``ir_growth`` (relative change of IR instructions), ``presence``
    ("only-incumbent" | "only-candidate": the function is in the optimized IR of one side only)."""
    d: dict = {}
    # Presence in the optimized IR (a function inlined everywhere still has remarks from before).
    in_a, in_b = bool((inc or {}).get("ir")), bool((cand or {}).get("ir"))
    if in_a != in_b:
        d["presence"] = "only-incumbent" if in_a else "only-candidate"
    a, b = _inl_set(inc), _inl_set(cand)
    if b - a:
        d["inlined_gained"] = sorted(b - a)[:MAX_ITEMS]
    if a - b:
        d["inlined_lost"] = sorted(a - b)[:MAX_ITEMS]
    va, vb = _vec_map(inc), _vec_map(cand)
    gained = [{"line": ln, "vf": vb[ln][0], "ic": vb[ln][1]} for ln in vb if ln not in va]
    lost = [{"line": ln, "vf": va[ln][0], "ic": va[ln][1]} for ln in va if ln not in vb]
    if gained:
        d["vectorized_gained"] = gained[:MAX_ITEMS]
    if lost:
        d["vectorized_lost"] = lost[:MAX_ITEMS]
    changed = [{"line": ln, "before": list(va[ln]), "after": list(vb[ln])} for ln in va if ln in vb and va[ln] != vb[ln]]
    if changed:
        d["vf_ic_changed"] = changed[:MAX_ITEMS]
    ua, ub = _unroll_map(inc), _unroll_map(cand)
    uc = [{"line": ln, "before": list(ua[ln]) if ln in ua else None, "after": list(ub[ln]) if ln in ub else None}
          for ln in sorted(set(ua) | set(ub), key=lambda x: (x is None, x or 0)) if ua.get(ln) != ub.get(ln)]
    if uc:
        d["unroll_changed"] = uc[:MAX_ITEMS]
    ca, cb = _counts(inc), _counts(cand)
    slp = cb.get("slp_vectorized", 0) - ca.get("slp_vectorized", 0)
    if slp:
        d["slp_delta"] = slp
    sp = (cb.get("spills", 0) + cb.get("reloads", 0)) - (ca.get("spills", 0) + ca.get("reloads", 0))
    if sp:
        d["spills_delta"] = sp
    ia, ib = (inc or {}).get("ir") or {}, (cand or {}).get("ir") or {}
    if ia or ib:
        delta = {k: ib.get(k, 0) - ia.get(k, 0) for k in IR_KEYS if ib.get(k, 0) != ia.get(k, 0)}
        if delta:
            d["ir_delta"] = delta
        if ia.get("instructions"):
            d["ir_growth"] = round((ib.get("instructions", 0) - ia["instructions"]) / ia["instructions"], 3)
            if d["ir_growth"] == 0:
                del d["ir_growth"]
    return d


def _phrase(name: str, d: dict) -> str:
    bits = []
    if d.get("presence") == "only-incumbent":
        return f"{name}: gone (inlined everywhere or removed)"
    elif d.get("presence") == "only-candidate":
        bits.append("new out-of-line copy")
    if d.get("vectorized_lost"):
        bits.append("lost vectorization at " + ", ".join(f"L{x['line']} (VF{x['vf']} IC{x['ic']})" for x in d["vectorized_lost"][:3]))
    if d.get("vectorized_gained"):
        bits.append("newly vectorized " + ", ".join(f"L{x['line']} (VF{x['vf']} IC{x['ic']})" for x in d["vectorized_gained"][:3]))
    if d.get("vf_ic_changed"):
        bits.append("VF/IC " + ", ".join(f"L{x['line']} {x['before'][0]}x{x['before'][1]}->{x['after'][0]}x{x['after'][1]}"
                                          for x in d["vf_ic_changed"][:3]))
    if d.get("inlined_gained"):
        bits.append("now inlines " + ", ".join(d["inlined_gained"][:4]))
    if d.get("inlined_lost"):
        bits.append("no longer inlines " + ", ".join(d["inlined_lost"][:4]))
    if d.get("unroll_changed"):
        def fmt(u):
            return f"{u[0]} x{u[1]}" if u else "none"
        bits.append("unrolling " + ", ".join(f"L{u['line']} {fmt(u['before'])}->{fmt(u['after'])}" for u in d["unroll_changed"][:3]))
    if d.get("slp_delta"):
        bits.append(f"SLP {d['slp_delta']:+d}")
    if d.get("spills_delta"):
        bits.append(f"spills+reloads {d['spills_delta']:+d}")
    if d.get("ir_growth") and abs(d["ir_growth"]) >= 0.05:
        bits.append(f"IR size {d['ir_growth'] * 100:+.0f}%")
    return f"{name}: " + ", ".join(bits) if bits else ""


def diagnose(incumbent_ev: dict, candidate_ev: dict, hot_functions: list) -> dict:
    """Compare incumbent and candidate evidence for the hot functions.

    ``hot_functions``: names hottest first (or ``(name, share)`` pairs); when empty, every
    function of either side is compared.  Returns::

        {"functions": {name: diff_function(...)},   # only functions with differences
         "changed": [names, hot order], "unchanged": [hot names without differences],
         "totals_delta": {key: candidate - incumbent} over the evidence totals,
         "summary": one line}

    A candidate whose hot functions show no difference in remarks or IR changed only code
    generation (knobs of the back end) or functions outside the hot set: the summary says so."""
    names = [h[0] if isinstance(h, (tuple, list)) else h for h in hot_functions or ()]
    if not names:
        names = sorted(set(incumbent_ev.get("functions") or {}) | set(candidate_ev.get("functions") or {}))
    out, changed, unchanged = {}, [], []
    for n in names:
        a, b = _fn(incumbent_ev, n), _fn(candidate_ev, n)
        if a is None and b is None:
            continue
        d = diff_function(a, b)
        if d:
            out[n] = d
            changed.append(n)
        else:
            unchanged.append(n)
    # Hot callers may have absorbed callees: report newly vanished functions too.
    ta, tb = incumbent_ev.get("totals") or {}, candidate_ev.get("totals") or {}
    totals_delta = {k: tb.get(k, 0) - ta.get(k, 0) for k in sorted(set(ta) | set(tb))
                    if isinstance(ta.get(k, 0), (int, float)) and isinstance(tb.get(k, 0), (int, float))
                    and tb.get(k, 0) != ta.get(k, 0)}
    phrases = [p for p in (_phrase(n, out[n]) for n in changed) if p]
    if phrases:
        summary = "; ".join(phrases[:4]) + (f"; +{len(phrases) - 4} more functions" if len(phrases) > 4 else "")
    elif names:
        summary = ("no difference in remarks or IR of the hot functions: the change is in code generation "
                   "(back-end knobs, layout) or outside the hot functions")
    else:
        summary = "no functions to compare"
    return {"functions": out, "changed": changed, "unchanged": unchanged, "totals_delta": totals_delta,
            "summary": summary}


#: Which edit names touch which optimizer component (knob and flag-family names of
#: pipeline.py, plus "opt_level" and "passes").
COMPONENTS = {
    "vectorize": {"force-vector-width", "force-vector-interleave", "vectorizer-min-trip-count",
                  "enable-interleaved-mem-accesses", "enable-epilogue-vectorization", "runtime-memory-check-threshold",
                  "vectorize-memory-check-threshold", "small-loop-cost", "force-target-max-vector-interleave",
                  "extra-vectorizer-passes", "vectorize", "march", "fast-math", "fp-contract", "math-errno",
                  "enable-loop-distribute", "enable-loop-versioning-licm", "opt_level", "passes"},
    "inline": {"inline-threshold", "inlinehint-threshold", "hot-callsite-threshold", "inline-functions", "opt_level",
               "passes"},
    "unroll": {"unroll-threshold", "unroll-partial-threshold", "unroll-count", "unroll-max-count", "unroll-allow-partial",
               "unroll-runtime", "unroll-max-upperbound", "unroll-loops", "enable-unroll-and-jam", "opt_level", "passes",
               "force-vector-interleave"},
    "slp": {"slp-threshold", "slp-vectorize", "march", "fast-math", "opt_level", "passes"},
    "size": {"jump-threading-threshold", "enable-dfa-jump-thread", "phi-node-folding-threshold",
             "two-entry-phi-node-folding-threshold", "rotation-max-header-size", "enable-loop-flatten",
             "enable-loopinterchange", "enable-gvn-hoist", "enable-gvn-sink", "enable-chr", "licm-mssa-optimization-cap",
             "memdep-block-scan-limit", "inline-threshold", "unroll-threshold", "opt_level", "passes"},
    "regalloc": {"force-vector-interleave", "unroll-threshold", "unroll-count", "inline-threshold", "march", "mtune"},
    "codegen": {"tail-dup-size", "tail-dup-placement-threshold", "x86-cmov-converter", "enable-ext-tsp-block-placement",
                "align-functions", "align-loops", "mtune", "march", "jump-tables", "omit-frame-pointer",
                "function-sections", "plt", "semantic-interposition", "fp-contract"},
}


def _edit_name(e) -> tuple[str, str]:
    """(component key name, display string) of an Edit or of its ``str()`` (``name=value``)."""
    if isinstance(e, str):
        name = e.split("=", 1)[0].strip()
        return name, e
    kind = getattr(e, "kind", "")
    if kind in ("opt_level", "passes"):
        return kind, str(e)
    return getattr(e, "name", str(e)), str(e)


def blamed_edits(diagnosis: dict, edits: list) -> list[str]:
    """The edits (as their display strings) a regression is most likely due to.

    Heuristic: each kind of difference in ``diagnosis`` (from :func:`diagnose`) points at the
    optimizer components that make it (COMPONENTS): vectorization changes -> vectorizer knobs;
    inlining -> inliner thresholds; unrolling -> unroller knobs; SLP -> slp-threshold; IR growth
    of 20 %+ not explained by those -> size-affecting thresholds (jump threading, CFG folding ...);
    more spills -> interleave/unroll/inline; no difference in the hot functions -> back-end knobs.
    ``edits``: Edit objects or their strings (``name=value``, ``opt_level=O2``, ``passes=...``).
    A single edit is always blamed; when no edit matches, every edit is (one cannot tell)."""
    items = [_edit_name(e) for e in edits or ()]
    if not items:
        return []
    comps = set()
    funcs = (diagnosis or {}).get("functions") or {}
    for d in funcs.values():
        if d.get("vectorized_lost") or d.get("vectorized_gained") or d.get("vf_ic_changed"):
            comps.add("vectorize")
        if d.get("inlined_lost") or d.get("inlined_gained") or d.get("presence"):
            comps.add("inline")
        if d.get("unroll_changed"):
            comps.add("unroll")
        if d.get("slp_delta"):
            comps.add("slp")
        explained = any(d.get(k) for k in ("vectorized_lost", "vectorized_gained", "vf_ic_changed", "inlined_lost",
                                           "inlined_gained", "presence", "unroll_changed", "slp_delta"))
        if d.get("ir_growth", 0.0) >= SIZE_CHANGE and not explained:
            comps.add("size")
        if d.get("spills_delta", 0) > 0:
            comps.add("regalloc")
    if not funcs:
        comps.add("codegen")
    if len(items) == 1:
        return [items[0][1]]
    blamed = [disp for name, disp in items if any(name in COMPONENTS[c] for c in comps)]
    return blamed or [disp for _, disp in items]
