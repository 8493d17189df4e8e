"""Evidence for one translation unit: what the optimizer did to each function, and why.

:func:`collect` compiles one TU the way a trial would (the user's recorded argv with the
pipeline applied, object redirected into a scratch directory) and reads two things back:

* the **optimization remarks** of the compile (``-fsave-optimization-record=yaml``; for a pipeline
  with a pass string, ``opt-19 -pass-remarks-output`` plus the back end's record), summarised per
  function: call sites inlined / not inlined (with the inliner's cost and threshold), loops
  vectorized (VF, interleave count) / not vectorized (the vectorizer's reasons), loops unrolled,
  LICM hoists, GVN load eliminations, SLP results, register-allocator spills, stack size;
* **IR statistics** of the optimized module, per function: instructions, basic blocks, natural
  loops (``opt-19 -passes='print<loops>'``), calls, vector instructions, switches.

The result is a JSON-able dict (its shape is documented on :func:`collect`) that the rules
(tuning/rules.py), the LLM agents (through :func:`summarize_for_prompt`), the regression diagnosis
(tuning/diagnose.py) and ``autopass-cc explain`` read.

Remark names and argument keys are those LLVM 19 emits (Inliner.cpp / InlineAdvisor.cpp:
``Inlined``, ``TooCostly``, ``NoDefinition``, ``NeverInline`` with ``Callee``, ``Caller``, ``Cost``,
``Threshold``; LoopVectorize.cpp: ``Vectorized`` with ``VectorizationFactor`` and
``InterleaveCount``, ``MissedDetails`` preceded by ``Analysis`` remarks naming the reason;
LoopUnroll.cpp: ``FullyUnrolled``, ``PartialUnrolled`` with ``UnrollCount``; LICM.cpp: ``Hoisted``,
``InstSunk``; GVN.cpp: ``LoadElim``, ``LoadClobbered``; SLPVectorizer.cpp: ``StoresVectorized``,
``VectorizedList``, ``VectorizedHorizontalReduction``, ``NotBeneficial`` with ``Cost`` and
``Treshold`` [sic]; RegAllocBase: ``SpillReloadCopies``; PrologEpilogInserter: ``StackSize``;
AsmPrinter: ``InstructionCount``).

Only PyYAML is imported at module level; the compile hot path never imports this module.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import yaml

#: Most entries kept per function in each detail list (inlined, not_inlined, vectorized, ...);
#: the counters in ``counts`` stay exact.
MAX_LIST = 16
#: Most remark documents parsed from one file (a 10 MB record has ~30 000).
MAX_DOCS = 200_000
#: Longest remark message kept, in characters.
MAX_MSG = 240

_REMARK_TIMEOUT_S = 600


class EvidenceError(RuntimeError):
    """The TU could not be compiled for evidence (``str(err)`` carries the compiler's message)."""


# ----------------------------------------------------------------------------------------------
# YAML remark loading
# ----------------------------------------------------------------------------------------------

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _RemarkLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe loader that accepts any local tag (``!Passed``, ``!Missed``, ``!Analysis``,
    ``!Failure``, ``!AnalysisFPCommute``, ``!AnalysisAliasing`` ...) and records it as ``_kind``."""


def _construct_remark(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        d = loader.construct_mapping(node, deep=True)
    else:  # never produced by LLVM; be tolerant
        d = {"_value": loader.construct_scalar(node)}
    d["_kind"] = suffix
    return d


_RemarkLoader.add_multi_constructor("!", _construct_remark)

#: Remarks skipped before YAML parsing: one per machine basic block, never used (AsmPrinter).
_SKIP_NAMES = ("InstructionMix",)
_DOC_SPLIT = re.compile(r"^(?=--- )", re.M)
_NAME_RE = re.compile(r"^Name:\s+(\S+)", re.M)


def load_remarks(path: str, max_docs: int = MAX_DOCS) -> tuple[list[dict], bool]:
    """Parse an optimization-record YAML file: ``(documents, truncated)``.

    Each document is the remark mapping (``Pass``, ``Name``, ``Function``, ``DebugLoc``, ``Args``)
    plus ``_kind`` (the tag without ``!``).  AsmPrinter ``InstructionMix`` remarks (one per basic
    block, about 70 % of a record) are dropped by a text pre-filter before parsing; at most
    ``max_docs`` documents are parsed (``truncated`` is then True)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return parse_remarks_text(text, max_docs)


def parse_remarks_text(text: str, max_docs: int = MAX_DOCS) -> tuple[list[dict], bool]:
    """:func:`load_remarks` on the text of a record."""
    keep, truncated = [], False
    for part in _DOC_SPLIT.split(text):
        if not part.startswith("--- "):
            continue
        m = _NAME_RE.search(part, 0, 400)
        if m and m.group(1) in _SKIP_NAMES:
            continue
        if len(keep) >= max_docs:
            truncated = True
            break
        keep.append(part)
    if not keep:
        return [], truncated
    docs = [d for d in yaml.load_all("".join(keep), Loader=_RemarkLoader) if isinstance(d, dict)]
    return docs, truncated


# ----------------------------------------------------------------------------------------------
# Remark summary
# ----------------------------------------------------------------------------------------------

def _int(v):
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        try:
            return int(float(str(v)))
        except (TypeError, ValueError):
            return None


def _args(doc: dict) -> tuple[dict, str]:
    """(first value of each non-String argument key, the message as LLVM prints it)."""
    vals, parts = {}, []
    for a in doc.get("Args") or ():
        if not isinstance(a, dict):
            continue
        for k, v in a.items():
            if k == "DebugLoc":
                continue
            parts.append(str(v))
            if k != "String" and k not in vals:
                vals[k] = v
            break
    return vals, "".join(parts)[:MAX_MSG]


def _line(doc: dict):
    loc = doc.get("DebugLoc")
    return loc.get("Line") if isinstance(loc, dict) else None


def _new_function() -> dict:
    return {
        "inlined": [], "not_inlined": [],
        "vectorized": [], "not_vectorized": [],
        "unrolled": [], "not_unrolled": [],
        "slp_missed": [],
        "counts": {"inlined": 0, "not_inlined": 0, "too_costly": 0, "vectorized": 0, "not_vectorized": 0,
                   "unrolled": 0, "licm_hoisted": 0, "licm_sunk": 0, "licm_promoted": 0, "licm_missed": 0,
                   "gvn_load_elim": 0, "gvn_load_clobbered": 0, "slp_vectorized": 0, "slp_missed": 0,
                   "spills": 0, "reloads": 0, "loop_spills": 0, "loop_reloads": 0, "remarks": 0},
        "stack_bytes": None,
        "machine_instructions": None,
        "other": {},
    }


def _push(lst: list, item) -> None:
    if len(lst) < MAX_LIST:
        lst.append(item)


def summarize_remarks(docs: list[dict]) -> dict:
    """Per-function summary of remark documents (see :func:`collect` for the shape).

    Loop-vectorizer ``Analysis`` remarks (the reasons) are attached to the next ``Vectorized`` /
    ``Interleaved`` / ``MissedDetails`` remark of the same function, the order in which
    LoopVectorize.cpp emits them.  Inliner remarks repeated by CGSCC re-visits are de-duplicated
    by (callee, line, column, decision)."""
    funcs: dict[str, dict] = {}
    pending: dict[str, list] = {}
    seen_inline: set = set()
    for d in docs:
        fn_name = d.get("Function")
        fn_name = str(fn_name) if fn_name is not None else "(module)"
        f = funcs.get(fn_name)
        if f is None:
            f = funcs[fn_name] = _new_function()
        c = f["counts"]
        c["remarks"] += 1
        p, name, kind = d.get("Pass", ""), str(d.get("Name", "")), d.get("_kind", "")
        line = _line(d)
        if p in ("inline", "always-inline"):
            vals, msg = _args(d)
            loc = d.get("DebugLoc") if isinstance(d.get("DebugLoc"), dict) else {}
            key = (fn_name, str(vals.get("Callee")), line, loc.get("Column"), name)
            if key in seen_inline:
                continue
            seen_inline.add(key)
            rec = {"callee": str(vals.get("Callee", "?")), "line": line, "cost": _int(vals.get("Cost")),
                   "threshold": _int(vals.get("Threshold"))}
            if kind == "Passed":
                c["inlined"] += 1
                _push(f["inlined"], rec)
            elif kind in ("Missed", "Analysis", "Failure"):
                c["not_inlined"] += 1
                if name == "TooCostly":
                    c["too_costly"] += 1
                rec["reason"] = name
                if "Reason" in vals:
                    rec["detail"] = str(vals["Reason"])[:120]
                rec["message"] = msg
                _push(f["not_inlined"], rec)
        elif p == "loop-vectorize":
            vals, msg = _args(d)
            if kind == "Passed" and name in ("Vectorized", "Interleaved"):
                c["vectorized"] += 1
                vf = _int(vals.get("VectorizationFactor")) if name == "Vectorized" else 1
                rec = {"line": line, "vf": vf, "ic": _int(vals.get("InterleaveCount")),
                       "notes": pending.pop(fn_name, [])[:6]}
                if vf is None:  # scalable "vscale x N" widths
                    rec["vf_text"] = str(vals.get("VectorizationFactor"))
                _push(f["vectorized"], rec)
            elif kind in ("Missed", "Failure"):
                c["not_vectorized"] += 1
                reasons = pending.pop(fn_name, [])
                if name != "MissedDetails":
                    reasons.append({"name": name, "message": msg})
                _push(f["not_vectorized"], {"line": line, "reasons": reasons[:6]})
            else:  # Analysis*: a reason for the decision that follows
                lst = pending.setdefault(fn_name, [])
                if len(lst) < 12:
                    lst.append({"name": name, "message": msg})
        elif p == "loop-unroll":
            vals, msg = _args(d)
            if kind == "Passed":
                c["unrolled"] += 1
                count = _int(vals.get("UnrollCount"))
                if name == "FullyUnrolled":
                    how = "full"
                elif name == "Peeled":  # LoopPeel.cpp via the unroll pass: "peeled loop by N iterations"
                    how, count = "peeled", _int(vals.get("PeelCount"))
                elif "run-time trip count" in msg:
                    how = "runtime"
                else:
                    how = "partial"
                _push(f["unrolled"], {"line": line, "kind": how, "count": count})
            else:
                _push(f["not_unrolled"], {"line": line, "reason": name, "message": msg})
        elif p == "TTI" and name == "DontUnroll":
            _vals, msg = _args(d)
            rec = {"line": line, "reason": name, "message": msg}
            if rec not in f["not_unrolled"]:  # emitted again by the back end's loop passes
                _push(f["not_unrolled"], rec)
        elif p == "licm":
            if name == "Hoisted":
                c["licm_hoisted"] += 1
            elif name == "InstSunk":
                c["licm_sunk"] += 1
            elif name.startswith("Promote"):
                c["licm_promoted"] += 1
            elif kind == "Missed":
                c["licm_missed"] += 1
        elif p == "gvn":
            if name == "LoadElim":
                c["gvn_load_elim"] += 1
            elif name == "LoadClobbered":
                c["gvn_load_clobbered"] += 1
        elif p == "slp-vectorizer":
            if kind == "Passed":
                c["slp_vectorized"] += 1
            elif kind == "Missed":
                c["slp_missed"] += 1
                vals, msg = _args(d)
                cost = _int(vals.get("Cost"))
                thr = _int(vals.get("Threshold", vals.get("Treshold")))
                if cost is not None:
                    _push(f["slp_missed"], {"line": line, "reason": name, "cost": cost, "threshold": thr})
        elif p == "regalloc":
            vals, _msg = _args(d)
            if name == "SpillReloadCopies":
                c["spills"] += _int(vals.get("NumSpills")) or 0
                c["reloads"] += _int(vals.get("NumReloads")) or 0
            elif name == "LoopSpillReloadCopies":
                c["loop_spills"] += _int(vals.get("NumSpills")) or 0
                c["loop_reloads"] += _int(vals.get("NumReloads")) or 0
        elif p == "prologepilog" and name == "StackSize":
            vals, _msg = _args(d)
            f["stack_bytes"] = _int(vals.get("NumStackBytes"))
        elif p == "asm-printer" and name == "InstructionCount":
            vals, _msg = _args(d)
            f["machine_instructions"] = _int(vals.get("NumInstructions"))
        else:
            k = f"{p}/{name}"
            if k in f["other"] or len(f["other"]) < 24:
                f["other"][k] = f["other"].get(k, 0) + 1
    # Analysis remarks never followed by a decision (rare): keep them as "not vectorized".
    for fn_name, reasons in pending.items():
        if reasons:
            f = funcs[fn_name]
            f["counts"]["not_vectorized"] += 1
            _push(f["not_vectorized"], {"line": None, "reasons": reasons[:6]})
    return funcs


# ----------------------------------------------------------------------------------------------
# IR statistics
# ----------------------------------------------------------------------------------------------

_DEFINE_RE = re.compile(r'@("(?:[^"\\]|\\.)*"|[-a-zA-Z$._0-9]+)\(')
_LABEL_RE = re.compile(r'^("(?:[^"\\]|\\.)*"|[-a-zA-Z$._0-9]+):')
_INST_RE = re.compile(r'^\s+(?:%[-a-zA-Z$._0-9]+ = |%"[^"]*" = )?(?:(?:tail|musttail|notail) )?([a-z][a-z0-9_]*)')
_VEC_RE = re.compile(r"<(?:vscale x )?\d+ x ")
_LOOP_FN_RE = re.compile(r"^Loop info for function '(.*)':\s*$")
_LOOP_RE = re.compile(r"^(\s*)Loop at depth (\d+) containing: (.*)$")


def _unquote(name: str) -> str:
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1]
    return name


def _new_ir(internal: bool) -> dict:
    return {"instructions": 0, "blocks": 0, "loops": 0, "max_loop_depth": 0, "calls": 0,
            "intrinsic_calls": 0, "indirect_calls": 0, "vector_instructions": 0, "loads": 0,
            "stores": 0, "phis": 0, "switches": 0, "switch_cases": 0, "indirectbr": 0,
            "max_switch_cases_in_loop": 0, "callees": [], "internal": internal}


def ir_stats(ll_text: str) -> tuple[dict, dict]:
    """Per-function statistics of textual IR: ``(stats, switch_blocks)``.

    ``stats[name]`` has ``instructions`` (debug records excluded), ``blocks``, ``calls`` (direct
    and indirect calls/invokes of non-intrinsics), ``intrinsic_calls``, ``indirect_calls``,
    ``vector_instructions`` (any ``<N x T>`` operand or result), ``loads``, ``stores``, ``phis``,
    ``switches``, ``switch_cases``, ``indirectbr``, ``callees`` (first 16 distinct direct callees)
    and ``internal`` (local linkage); ``loops`` fields are filled by :func:`add_loop_stats`.
    ``switch_blocks[name]`` maps a block label (``%N`` form) to its switch's case count."""
    stats: dict[str, dict] = {}
    switches: dict[str, dict] = {}
    cur = None
    in_switch = False
    block = None
    for line in ll_text.splitlines():
        if cur is None:
            if line.startswith("define "):
                m = _DEFINE_RE.search(line)
                if not m:
                    continue
                name = _unquote(m.group(1))
                head = line[:m.start()]
                cur = stats[name] = _new_ir(" internal " in head or " private " in head)
                switches[name] = {}
                cur["blocks"] = 1
                block = None
                first = True
            continue
        if line.startswith("}"):
            cur = None
            in_switch = False
            continue
        if in_switch:
            s = line.strip()
            if s.startswith("]"):
                in_switch = False
            elif s:
                cur["switch_cases"] += 1
                if block is not None:
                    switches[name][block] = switches[name].get(block, 0) + 1
            continue
        if not line or line.lstrip().startswith(";"):
            continue
        if not line[0].isspace():
            m = _LABEL_RE.match(line)
            if m:
                label = "%" + m.group(1)
                if first:
                    first = False  # an explicitly labelled entry block
                else:
                    cur["blocks"] += 1
                block = label
            continue
        first = False
        s = line.lstrip()
        if s.startswith("#dbg_"):
            continue
        m = _INST_RE.match(line)
        if not m:
            continue
        op = m.group(1)
        cur["instructions"] += 1
        if _VEC_RE.search(line):
            cur["vector_instructions"] += 1
        if op in ("call", "invoke", "callbr"):
            cm = _DEFINE_RE.search(line)
            if cm is None:
                cur["indirect_calls"] += 1
                cur["calls"] += 1
            else:
                callee = _unquote(cm.group(1))
                if callee.startswith("llvm."):
                    if callee.startswith("llvm.dbg."):
                        cur["instructions"] -= 1
                    else:
                        cur["intrinsic_calls"] += 1
                else:
                    cur["calls"] += 1
                    if callee not in cur["callees"] and len(cur["callees"]) < 16:
                        cur["callees"].append(callee)
        elif op == "load":
            cur["loads"] += 1
        elif op == "store":
            cur["stores"] += 1
        elif op == "phi":
            cur["phis"] += 1
        elif op == "switch":
            cur["switches"] += 1
            in_switch = "]" not in line
            if block is None:
                block = "%entry?"
            switches[name].setdefault(block, 0)
        elif op == "indirectbr":
            cur["indirectbr"] += 1
    return stats, switches


def add_loop_stats(stats: dict, switches: dict, loops_text: str) -> None:
    """Fill ``loops``, ``max_loop_depth`` and ``max_switch_cases_in_loop`` of ``stats`` from the
    output of ``opt -passes='print<loops>' -disable-output`` (LoopInfo's printer: one
    "Loop at depth D containing: %a<header>,%b,..." line per natural loop)."""
    fn = None
    for line in loops_text.splitlines():
        m = _LOOP_FN_RE.match(line)
        if m:
            fn = m.group(1)
            continue
        m = _LOOP_RE.match(line)
        if m and fn in stats:
            st = stats[fn]
            st["loops"] += 1
            st["max_loop_depth"] = max(st["max_loop_depth"], int(m.group(2)))
            sw = switches.get(fn) or {}
            if sw:
                for blk in m.group(3).split(","):
                    blk = blk.split("<", 1)[0].strip()
                    if blk in sw:
                        st["max_switch_cases_in_loop"] = max(st["max_switch_cases_in_loop"], sw[blk])


# ----------------------------------------------------------------------------------------------
# The O3 pipeline string
# ----------------------------------------------------------------------------------------------

_O3: str | None = None


def o3_pipeline() -> str:
    """``opt-19 -passes='default<O3>' -print-pipeline-passes``: the textual O3 pipeline (about 4 KB)
    that pass-pipeline edits start from.  Computed once per process.  Fed back to ``opt-19
    -passes=`` it gives the same code as ``default<O3>`` (checked in tests/unit/test_evidence.py)."""
    global _O3
    if _O3 is None:
        from ..toolchain import llvm_tool
        r = subprocess.run([llvm_tool("opt"), "-passes=default<O3>", "-print-pipeline-passes", "-disable-output"],
                           input=b"", capture_output=True, timeout=120)
        if r.returncode != 0:
            raise EvidenceError("opt-19 -print-pipeline-passes failed: " + r.stderr.decode(errors="replace")[:300])
        _O3 = r.stdout.decode().strip()
    return _O3


# ----------------------------------------------------------------------------------------------
# collect
# ----------------------------------------------------------------------------------------------

def _tail(b: bytes, n: int = 600) -> str:
    return b.decode(errors="replace").strip()[-n:]


def _user_opt_level(args) -> str | None:
    level = None
    for a in args:
        if re.fullmatch(r"-O(?:[0-3sz]|fast)?", a):
            level = "O2" if a == "-O" else a[1:]
    return level


def _totals(functions: dict) -> dict:
    keys = ("inlined", "not_inlined", "too_costly", "vectorized", "not_vectorized", "unrolled", "licm_hoisted",
            "licm_sunk", "gvn_load_elim", "gvn_load_clobbered", "slp_vectorized", "slp_missed", "spills", "reloads",
            "remarks")
    t = {k: 0 for k in keys}
    ir_keys = ("instructions", "blocks", "loops", "calls", "vector_instructions")
    t.update({"ir_" + k: 0 for k in ir_keys})
    for f in functions.values():
        for k in keys:
            t[k] += f["counts"].get(k, 0)
        ir = f.get("ir")
        if ir:
            for k in ir_keys:
                t["ir_" + k] += ir.get(k, 0)
    t["functions"] = len(functions)
    t["functions_in_ir"] = sum(1 for f in functions.values() if f.get("ir"))
    return t


def collect(compiler: str, args: list[str], cwd: str, pipeline, workdir: str,
            timeout_s: float = _REMARK_TIMEOUT_S) -> dict:
    """Compile one TU with ``pipeline`` and summarise what the optimizer did, per function.

    ``args``: the user's argv after the compiler as recorded in the build log; ``cwd``: where it
    ran; ``pipeline``: a Pipeline (autopass_cc/pipeline.py); ``workdir``: scratch directory
    (created; holds ``x.o``, ``x.opt.yaml``, ``x.ll``); ``timeout_s``: seconds each compile step may
    take (stopped after; EvidenceError or subprocess.TimeoutExpired).

    Without a pass string the object is built by :func:`autopass_cc.emit.compile_tu` with
    ``-fsave-optimization-record=yaml`` (all remarks, middle and back end) while, in parallel,
    ``clang <same args> -S -emit-llvm`` writes the optimized IR (the IR of exactly this compile:
    clang's pipeline with the pipeline's flags and knobs).  With a pass string the split route is
    taken: front end (``-disable-llvm-passes -emit-llvm``) -> ``opt-19 -passes=... -S`` with
    ``-pass-remarks-output`` -> back end on that IR with its own record.

    Returns::

        {"tu": source as written, "pipeline": [description], "user_opt_level": "O3" | None,
         "functions": {name: {
             "inlined": [{"callee", "line", "cost", "threshold"}],
             "not_inlined": [{"callee", "line", "cost", "threshold", "reason", "message"[, "detail"]}],
             "vectorized": [{"line", "vf", "ic", "notes": [{"name", "message"}]}],
             "not_vectorized": [{"line", "reasons": [{"name", "message"}]}],
             "unrolled": [{"line", "kind": "full" | "partial" | "runtime" | "peeled", "count"}],
             "not_unrolled": [{"line", "reason", "message"}],
             "slp_missed": [{"line", "reason", "cost", "threshold"}],
             "counts": {"inlined", "not_inlined", "too_costly", "vectorized", "not_vectorized",
                        "unrolled", "licm_hoisted", "licm_sunk", "licm_promoted", "licm_missed",
                        "gvn_load_elim", "gvn_load_clobbered", "slp_vectorized", "slp_missed",
                        "spills", "reloads", "loop_spills", "loop_reloads", "remarks"},
             "stack_bytes": int | None, "machine_instructions": int | None,
             "other": {"pass/Name": count},
             "ir": {see ir_stats} | None}},
         "totals": {sums of the counts, "ir_instructions", "ir_loops", ..., "functions"},
         "remarks_file_bytes": int, "remarks_parsed": int, "truncated": bool, "seconds": float}

    Lists are capped at MAX_LIST entries per function; counts are exact.  Raises EvidenceError
    when the TU does not compile, ValueError when ``args`` is not one TU compile."""
    from .. import emit
    from ..invocation import Invocation, classify
    from ..toolchain import llvm_tool

    t0 = time.monotonic()
    inv = classify(list(args), cwd, cplusplus="++" in os.path.basename(compiler))
    if not isinstance(inv, Invocation):
        raise ValueError(f"not a single-TU compile ({inv.reason}): {' '.join(args)[:200]}")
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    obj = os.path.join(workdir, "x.o")
    remarks = os.path.join(workdir, "x.opt.yaml")
    cg_remarks = os.path.join(workdir, "x.cg.opt.yaml")
    ll = os.path.join(workdir, "x.ll")
    bc = os.path.join(workdir, "x.bc")
    for p in (obj, remarks, cg_remarks, ll, bc):
        try:
            os.unlink(p)
        except OSError:
            pass
    record = ["-fsave-optimization-record=yaml"]
    opt = llvm_tool("opt")
    if pipeline.passes is None:
        ir_cmd = [compiler] + emit.tuned_args(emit.retarget(list(args), ll), pipeline) + ["-S", "-emit-llvm"]
        ir_proc = subprocess.Popen(ir_cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        res, ir_err = None, b""
        try:
            res = emit.compile_tu(compiler, inv, emit.retarget(list(args), obj), pipeline, cwd, output=obj,
                                  extra=record + [f"-foptimization-record-file={remarks}"], opt_tool=opt,
                                  timeout_s=timeout_s)
        finally:
            if res is None or res.returncode != 0:  # (no use for the IR: stop it now)
                ir_proc.kill()
                ir_proc.communicate()
            else:
                try:  # it started with the object's compile: it gets what is left of the same time
                    _out, ir_err = ir_proc.communicate(timeout=max(1.0, timeout_s - (time.monotonic() - t0)))
                except subprocess.TimeoutExpired:
                    ir_proc.kill()
                    ir_proc.communicate()
                    raise EvidenceError(f"the IR compile took more than {timeout_s:.0f} s") from None
        if res.returncode != 0:
            raise EvidenceError(f"compile failed ({res.returncode}): {_tail(res.stderr)}")
        if ir_proc.returncode != 0:
            raise EvidenceError(f"IR compile failed ({ir_proc.returncode}): {_tail(ir_err)}")
        record_files = [remarks]
    else:
        step1 = ([compiler] + emit.tuned_args(emit.retarget(list(args), bc), pipeline)
                 + ["-Xclang", "-disable-llvm-passes", "-emit-llvm"])
        r = subprocess.run(step1, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout_s)
        if r.returncode != 0:
            raise EvidenceError(f"front end failed ({r.returncode}): {_tail(r.stderr)}")
        step2 = ([opt] + emit.opt_target_args(bc, inv.codegen_args) + [f"-{n}={v}" for n, v in pipeline.knobs]
                 + [f"-passes={pipeline.passes}", bc, "-S", "-o", ll, f"-pass-remarks-output={remarks}",
                    "-pass-remarks-format=yaml"])
        r = subprocess.run(step2, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout_s)
        if r.returncode != 0:
            raise EvidenceError(f"opt failed ({r.returncode}): {_tail(r.stderr)}")
        level = [f"-{pipeline.opt_level}"] if pipeline.opt_level else []
        step3 = ([compiler] + emit.backend_args(inv) + level
                 + pipeline.backend_clang_args()
                 + ["-Wno-unused-command-line-argument", "-Xclang", "-disable-llvm-passes", "-c", ll, "-o", obj]
                 + record + [f"-foptimization-record-file={cg_remarks}"])
        r = subprocess.run(step3, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout_s)
        if r.returncode != 0:
            raise EvidenceError(f"back end failed ({r.returncode}): {_tail(r.stderr)}")
        record_files = [remarks, cg_remarks]

    docs, truncated, nbytes = [], False, 0
    for path in record_files:
        if os.path.exists(path):
            nbytes += os.path.getsize(path)
            d, tr = load_remarks(path, MAX_DOCS - len(docs))
            docs += d
            truncated = truncated or tr
    functions = summarize_remarks(docs)

    with open(ll, encoding="utf-8", errors="replace") as f:
        stats, switches = ir_stats(f.read())
    loops = subprocess.run([opt, "-passes=print<loops>", "-disable-output", ll], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=_REMARK_TIMEOUT_S)
    add_loop_stats(stats, switches, loops.stderr.decode(errors="replace") + loops.stdout.decode(errors="replace"))
    for name, st in stats.items():
        functions.setdefault(name, _new_function())["ir"] = st
    for f in functions.values():
        f.setdefault("ir", None)
    return {"tu": inv.source, "pipeline": pipeline.describe(), "user_opt_level": _user_opt_level(args),
            "functions": functions, "totals": _totals(functions), "remarks_file_bytes": nbytes,
            "remarks_parsed": len(docs), "truncated": truncated, "seconds": round(time.monotonic() - t0, 3)}


# ----------------------------------------------------------------------------------------------
# Text for prompts and `autopass-cc explain`
# ----------------------------------------------------------------------------------------------

def _hot_list(hot_functions) -> list[tuple[str, float | None]]:
    out = []
    for h in hot_functions or ():
        if isinstance(h, (tuple, list)):
            out.append((str(h[0]), float(h[1]) if len(h) > 1 and h[1] is not None else None))
        else:
            out.append((str(h), None))
    return out


def _short(s: str, n: int = 90) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def describe_function(name: str, f: dict, tag: str = "") -> list[str]:
    """Compact lines describing one function's evidence (used by :func:`summarize_for_prompt`)."""
    lines = []
    ir = f.get("ir") or {}
    head = f"fn {name}{tag}"
    if ir:
        head += (f": IR {ir['instructions']} insts, {ir['blocks']} blocks, {ir['loops']} loops"
                 f" (depth {ir['max_loop_depth']}), {ir['calls']} calls, {ir['vector_instructions']} vector insts")
        if ir.get("switches"):
            head += f", {ir['switches']} switches ({ir['switch_cases']} cases)"
        if ir.get("indirectbr"):
            head += f", {ir['indirectbr']} indirectbr"
    else:
        head += ": not in the optimized IR (inlined everywhere or removed)"
    lines.append(head)
    for v in f.get("vectorized", [])[:4]:
        notes = "; ".join(_short(n["message"], 60) for n in v.get("notes", [])[:1])
        lines.append(f"  vectorized L{v['line']}: VF {v.get('vf', v.get('vf_text'))} IC {v['ic']}"
                     + (f" ({notes})" if notes else ""))
    for v in f.get("not_vectorized", [])[:4]:
        why = "; ".join(f"{r['name']}: {_short(r['message'], 80)}" for r in v.get("reasons", [])[:2]) or "no reason given"
        lines.append(f"  NOT vectorized L{v['line'] or '?'}: {why}")
    for u in f.get("unrolled", [])[:4]:
        lines.append(f"  unrolled L{u['line']}: {u['kind']} x{u['count']}")
    for u in f.get("not_unrolled", [])[:2]:
        lines.append(f"  not unrolled L{u['line']}: {_short(u['message'], 80)}")
    inl = f.get("inlined", [])
    if inl:
        # (LLVM's remark says "with (cost=always)" for an always_inline callee: no number)
        lines.append("  inlined: " + ", ".join(
            f"{i['callee']}(always)" if i["cost"] is None else
            f"{i['callee']}(cost {i['cost']})" if i["threshold"] is None else
            f"{i['callee']}(cost {i['cost']}/thr {i['threshold']})" for i in inl[:6])
                     + (f" +{f['counts']['inlined'] - 6} more" if f["counts"]["inlined"] > 6 else ""))
    for i in sorted(f.get("not_inlined", []), key=lambda i: i.get("reason") != "TooCostly")[:5]:
        # (the inliner declines a call site whose cost reaches its threshold: InlineCost.cpp, "Cost < Threshold")
        extra = f" cost {i['cost']} >= threshold {i['threshold']}" if i.get("reason") == "TooCostly" else ""
        lines.append(f"  NOT inlined L{i['line'] or '?'}: {i['callee']} {i.get('reason')}{extra}")
    c = f.get("counts", {})
    misc = []
    if c.get("licm_hoisted") or c.get("licm_sunk") or c.get("licm_missed"):
        misc.append(f"LICM hoisted {c.get('licm_hoisted', 0)} sunk {c.get('licm_sunk', 0)} missed {c.get('licm_missed', 0)}")
    if c.get("gvn_load_elim") or c.get("gvn_load_clobbered"):
        misc.append(f"GVN loads eliminated {c.get('gvn_load_elim', 0)}, clobbered {c.get('gvn_load_clobbered', 0)}")
    if c.get("slp_vectorized") or c.get("slp_missed"):
        best = min((s["cost"] - (s["threshold"] or 0) for s in f.get("slp_missed", []) if s["cost"] is not None), default=None)
        misc.append(f"SLP vectorized {c.get('slp_vectorized', 0)}, not beneficial {c.get('slp_missed', 0)}"
                    + (f" (nearest cost-threshold {best})" if best is not None else ""))
    if c.get("spills") or c.get("reloads"):
        misc.append(f"spills {c.get('spills', 0)} reloads {c.get('reloads', 0)}")
    if f.get("stack_bytes"):
        misc.append(f"stack {f['stack_bytes']} B")
    if f.get("machine_instructions"):
        misc.append(f"{f['machine_instructions']} machine insts")
    if misc:
        lines.append("  " + "; ".join(misc))
    return lines


def summarize_for_prompt(evidence: dict, hot_functions: list, max_chars: int) -> str:
    """A compact text summary of ``evidence`` (from :func:`collect`) for LLM prompts and
    ``autopass-cc explain``: a header with the totals, then one block per function, the hot ones
    first in the order given (``hot_functions``: names, or ``(name, share)`` pairs whose share
    0..1 is printed as a percentage), then the rest by IR size.  At most ``max_chars`` characters;
    functions that do not fit are counted in a last line."""
    funcs = evidence.get("functions") or {}
    t = evidence.get("totals") or {}
    header = (f"TU {evidence.get('tu')} [{' '.join(evidence.get('pipeline') or [])}]: {t.get('functions', len(funcs))} functions; "
              f"inlined {t.get('inlined', 0)}, not inlined {t.get('not_inlined', 0)} ({t.get('too_costly', 0)} too costly); "
              f"loops vectorized {t.get('vectorized', 0)}, not {t.get('not_vectorized', 0)}; unrolled {t.get('unrolled', 0)}; "
              f"IR {t.get('ir_instructions', 0)} insts, {t.get('ir_loops', 0)} loops")
    out = [header[:max_chars]]
    used = len(out[0])
    hot = _hot_list(hot_functions)
    order, seen = [], set()
    for rank, (name, share) in enumerate(hot):
        if name in funcs and name not in seen:
            tag = f" [hot #{rank + 1}" + (f", {share * 100:.1f}% of run" if share is not None else "") + "]"
            order.append((name, tag))
            seen.add(name)
    rest = sorted((n for n in funcs if n not in seen and n != "(module)"),
                  key=lambda n: -((funcs[n].get("ir") or {}).get("instructions", 0) + funcs[n]["counts"]["remarks"]))
    order += [(n, "") for n in rest]
    left = 0
    for i, (name, tag) in enumerate(order):
        block = "\n".join(describe_function(name, funcs[name], tag))
        if used + 1 + len(block) > max_chars:
            left = len(order) - i
            break
        out.append(block)
        used += 1 + len(block)
    if left:
        more = f"... {left} more functions not shown"
        if used + 1 + len(more) <= max_chars:
            out.append(more)
    return "\n".join(out)
