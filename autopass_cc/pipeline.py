"""The Pipeline value, the allowlist it is drawn from, and its validation.

A Pipeline says how to compile one translation unit beyond the user's own flags:

* ``opt_level``: ``"O1" | "O2" | "O3" | "Os" | "Oz"`` or None (keep the user's level);
* ``flags``: clang options grouped in *families* with one chosen value each, e.g.
  ``("unroll-loops", "on")`` -> ``-funroll-loops``.  Grouping makes contradictions such as
  ``-funroll-loops -fno-unroll-loops`` unrepresentable;
* ``knobs``: typed ``-mllvm`` options with ranges, e.g. ``("unroll-threshold", "600")``;
* ``passes``: an optional ``opt -passes=`` pipeline string, applied through the split route
  (ARCHITECTURE.md decision 1);
* ``profile``: an optional instrumentation profile for clang's PGO, named by the SHA-256 of the
  merged ``.profdata`` a session recorded from the run command (tuning/pgo.py) and kept in the
  cache directory (:func:`profile_path`); it becomes ``-fprofile-instr-use=PATH``.  Never a path
  a proposer chose: only the digest, checked against the file's bytes before each compile.  Not
  with ``passes``: clang applies an IR-level profile inside its own optimization pipeline, which
  the split route replaces.

Nothing reaches a command line except through :meth:`Pipeline.clang_args` of a validated Pipeline,
and validation accepts only names in the tables below (ARCHITECTURE.md decision 4).  Text proposed
by a model is turned into a Pipeline with :func:`parse_clang_args`, which refuses anything not in
the tables (``-fplugin``, ``-Xclang``, ``-B``, ``-o``, ``@file``, ``-specs``, ``-include``, paths,
shell text ...) with a reason.

Sources: clang's command-line reference (clang/docs/ClangCommandLineReference.rst) for the flags;
``clang-19 -mllvm --help-hidden`` of the installed LLVM 19.1.7 for the knob names, types and defaults
quoted in each entry; the defaults are those of LLVM 19 (e.g. InlineCost.cpp: inline-threshold 225,
LoopUnrollPass.cpp: unroll-threshold 300 at -O3).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

from .errors import PipelineError

OPT_LEVELS = ("O1", "O2", "O3", "Os", "Oz")


@dataclass(frozen=True)
class FlagFamily:
    """A clang option family: choice name -> the exact argv tokens it stands for.

    ``unsafe`` families may change floating-point results and are only allowed with the config's
    ``allow_unsafe_math`` opt-in; ``isa`` families change the instruction set and need
    ``allow_native``.  Verification still checks every candidate's output."""
    name: str
    choices: dict
    doc: str
    unsafe: bool = False
    isa: bool = False


@dataclass(frozen=True)
class Knob:
    """A typed ``-mllvm`` option.  ``kind`` is ``"int"``, ``"uint"`` or ``"bool"``; integer knobs
    carry an inclusive range [lo, hi] and the LLVM 19 default."""
    name: str
    kind: str
    default: object
    lo: int = 0
    hi: int = 1
    doc: str = ""


def _fam(name, doc, unsafe=False, isa=False, **choices):
    return FlagFamily(name, {k.replace("_", "-"): tuple(v) for k, v in choices.items()}, doc, unsafe, isa)


FLAG_FAMILIES: dict[str, FlagFamily] = {f.name: f for f in [
    _fam("unroll-loops", "loop unroller on/off", on=["-funroll-loops"], off=["-fno-unroll-loops"]),
    _fam("vectorize", "loop vectorizer on/off", on=["-fvectorize"], off=["-fno-vectorize"]),
    _fam("slp-vectorize", "SLP (straight-line) vectorizer on/off",
         on=["-fslp-vectorize"], off=["-fno-slp-vectorize"]),
    _fam("inline-functions", "inlining of non-inline-marked functions",
         on=["-finline-functions"], hint_only=["-finline-hint-functions"], off=["-fno-inline-functions"]),
    _fam("omit-frame-pointer", "frame pointer omission",
         on=["-fomit-frame-pointer"], off=["-fno-omit-frame-pointer"]),
    _fam("jump-tables", "switch lowering through jump tables", on=["-fjump-tables"], off=["-fno-jump-tables"]),
    _fam("math-errno", "errno from libm calls (off lets sqrt etc. become instructions)",
         on=["-fmath-errno"], off=["-fno-math-errno"]),
    _fam("semantic-interposition", "assume exported symbols may be interposed",
         on=["-fsemantic-interposition"], off=["-fno-semantic-interposition"]),
    _fam("plt", "calls through the PLT", on=["-fplt"], off=["-fno-plt"]),
    _fam("function-sections", "separate sections per function (lets the linker order them)",
         on=["-ffunction-sections"], off=["-fno-function-sections"]),
    _fam("align-functions", "function alignment in bytes",
         a16=["-falign-functions=16"], a32=["-falign-functions=32"], a64=["-falign-functions=64"]),
    _fam("align-loops", "loop alignment in bytes",
         a16=["-falign-loops=16"], a32=["-falign-loops=32"], a64=["-falign-loops=64"]),
    _fam("fp-contract", "FMA contraction (fast may change FP results: verified)",
         on=["-ffp-contract=on"], off=["-ffp-contract=off"], fast=["-ffp-contract=fast"], unsafe=True),
    _fam("fast-math", "unsafe floating-point math (-ffast-math)", on=["-ffast-math"], unsafe=True),
    _fam("march", "target ISA of the host (-march=native)", native=["-march=native"], isa=True),
    _fam("mtune", "scheduling model of the host (-mtune=native, same ISA)", native=["-mtune=native"]),
]}

KNOBS: dict[str, Knob] = {k.name: k for k in [
    # Inliner (llvm/lib/Analysis/InlineCost.cpp)
    Knob("inline-threshold", "int", 225, 0, 5000, "amount of inlining (default 225)"),
    Knob("inlinehint-threshold", "int", 325, 0, 5000, "threshold for inline-hinted callees"),
    Knob("hot-callsite-threshold", "int", 3000, 0, 20000, "threshold for hot call sites (with profile)"),
    # Loop unroller (llvm/lib/Transforms/Scalar/LoopUnrollPass.cpp)
    Knob("unroll-threshold", "uint", 300, 0, 8000, "cost threshold for unrolling"),
    Knob("unroll-partial-threshold", "uint", 0, 0, 8000, "cost threshold for partial unrolling"),
    Knob("unroll-count", "uint", 0, 0, 32, "force this unroll count for all loops (0 = cost model)"),
    Knob("unroll-max-count", "uint", 0, 0, 64, "max count for partial/runtime unrolling"),
    Knob("unroll-allow-partial", "bool", False, doc="allow partial unrolling"),
    Knob("unroll-runtime", "bool", False, doc="unroll loops with run-time trip counts"),
    Knob("unroll-max-upperbound", "uint", 8, 0, 64, "max trip-count upper bound for unrolling"),
    # Loop vectorizer (llvm/lib/Transforms/Vectorize/LoopVectorize.cpp)
    Knob("force-vector-width", "uint", 0, 0, 64, "SIMD width (0 = cost model)"),
    Knob("force-vector-interleave", "uint", 0, 0, 16, "interleave count (0 = cost model)"),
    Knob("vectorizer-min-trip-count", "uint", 16, 1, 256, "min constant trip count to vectorize"),
    Knob("enable-interleaved-mem-accesses", "bool", False, doc="vectorize interleaved accesses"),
    Knob("enable-epilogue-vectorization", "bool", True, doc="vectorize epilogue loops"),
    Knob("runtime-memory-check-threshold", "uint", 8, 0, 128, "max runtime alias checks"),
    Knob("vectorize-memory-check-threshold", "uint", 128, 0, 1024, "max runtime memory checks"),
    Knob("small-loop-cost", "uint", 20, 0, 200, "cost below which a loop is 'small' for interleaving"),
    Knob("force-target-max-vector-interleave", "uint", 0, 0, 16, "target max interleave override"),
    Knob("extra-vectorizer-passes", "bool", False, doc="cleanup passes after vectorization"),
    # SLP vectorizer (llvm/lib/Transforms/Vectorize/SLPVectorizer.cpp)
    Knob("slp-threshold", "int", 0, -20, 20, "SLP profitability threshold"),
    # Optional passes off by default in LLVM 19 (PassBuilderPipelines.cpp)
    Knob("enable-loopinterchange", "bool", False, doc="loop interchange pass"),
    Knob("enable-unroll-and-jam", "bool", False, doc="unroll-and-jam pass"),
    Knob("enable-loop-flatten", "bool", False, doc="loop flatten pass"),
    Knob("enable-dfa-jump-thread", "bool", False, doc="DFA jump threading (state machines)"),
    Knob("enable-gvn-hoist", "bool", False, doc="GVN hoisting"),
    Knob("enable-gvn-sink", "bool", False, doc="GVN sinking"),
    Knob("enable-loop-distribute", "bool", False, doc="loop distribution"),
    Knob("enable-loop-versioning-licm", "bool", False, doc="loop versioning for LICM"),
    Knob("enable-chr", "bool", True, doc="control height reduction (profile-driven)"),
    # Simplification and codegen thresholds
    Knob("jump-threading-threshold", "uint", 6, 0, 64, "max block size duplicated by jump threading"),
    Knob("phi-node-folding-threshold", "uint", 2, 0, 16, "phi node folding in SimplifyCFG"),
    Knob("two-entry-phi-node-folding-threshold", "uint", 4, 0, 32, "speculation cost in SimplifyCFG"),
    Knob("rotation-max-header-size", "uint", 16, 0, 256, "max header size for loop rotation"),
    Knob("licm-mssa-optimization-cap", "uint", 100, 0, 1000, "LICM MemorySSA cap"),
    Knob("memdep-block-scan-limit", "uint", 100, 0, 1000, "memory dependence scan limit"),
    Knob("tail-dup-size", "uint", 2, 0, 32, "max instructions tail-duplicated"),
    Knob("tail-dup-placement-threshold", "uint", 2, 0, 32, "tail duplication during layout"),
    Knob("x86-cmov-converter", "bool", True, doc="X86 cmov-to-branch conversion"),
    Knob("enable-ext-tsp-block-placement", "bool", False, doc="ext-TSP block placement"),
]}

#: Choices of ``unsafe`` families that do not change results: FP contraction off, or at clang's
#: default (``on``: contraction within a statement, as the C standard allows).
SAFE_UNSAFE_FAMILY_CHOICES = frozenset({("fp-contract", "off"), ("fp-contract", "on")})

#: Flag families that only configure clang's own middle-end pipeline (PassBuilder options set by the
#: driver); with a ``passes`` string they would be silently ignored, so validate() refuses the mix.
PIPELINE_ONLY_FAMILIES = frozenset({"unroll-loops", "vectorize", "slp-vectorize", "inline-functions"})

#: Characters an ``opt -passes=`` string may contain (pass names, parameters, nesting); no spaces,
#: quotes, shell metacharacters or path separators.  LLVM's PassBuilder grammar: NewPassManager.rst.
_PASSES_RE = re.compile(r"^[A-Za-z0-9<>;,=()_.\-]+$")
#: How an integer knob value must look.
_INT_RE = re.compile(r"^-?[0-9]{1,6}$")
#: How a profile's name must look: a SHA-256 in lowercase hex.
_PROFILE_RE = re.compile(r"^[0-9a-f]{64}$")


def _canon_knob_value(knob: Knob, value) -> str:
    if knob.kind == "bool":
        if isinstance(value, bool):
            return "true" if value else "false"
        text = str(value).strip().lower()
        if text in ("1", "true", "on", "yes"):
            return "true"
        if text in ("0", "false", "off", "no"):
            return "false"
        raise PipelineError(f"knob {knob.name} takes true/false, not {value!r}", "bad-value")
    text = str(value).strip()
    if isinstance(value, bool) or not _INT_RE.match(text):
        raise PipelineError(f"knob {knob.name} takes an integer, not {value!r}", "bad-value")
    n = int(text)
    if knob.kind == "uint" and n < 0 or not knob.lo <= n <= knob.hi:
        raise PipelineError(f"knob {knob.name}={n} is outside its range [{knob.lo}, {knob.hi}]", "out-of-range")
    return str(n)


@dataclass(frozen=True)
class Policy:
    """What a session may propose beyond the default allowlist (from the config)."""
    allow_unsafe_math: bool = False
    allow_native: bool = False
    #: -mllvm option names the installed LLVM accepts; None = do not check (unit tests).
    llvm_options: frozenset | None = None
    #: (family, choice) flags the installed clang does not take cleanly on this host
    #: (toolchain.host_flag_trouble: ``-march=native`` on some CPUs).
    host_trouble: frozenset = frozenset()


@dataclass(frozen=True)
class Pipeline:
    """One frozen pipeline; see the module docstring for the fields.  Build it with the ``with_*``
    methods or :func:`parse_clang_args`; check it with :func:`validate` before it is used."""
    opt_level: str | None = None
    flags: tuple = ()
    knobs: tuple = ()
    passes: str | None = None
    profile: str | None = None

    # -- construction ---------------------------------------------------------------------
    def with_opt_level(self, level: str | None) -> "Pipeline":
        return Pipeline(level, self.flags, self.knobs, self.passes, self.profile)

    def with_flag(self, family: str, choice: str | None) -> "Pipeline":
        """Set (or with None remove) one flag family's choice."""
        d = dict(self.flags)
        if choice is None:
            d.pop(family, None)
        else:
            d[family] = choice
        return Pipeline(self.opt_level, tuple(sorted(d.items())), self.knobs, self.passes, self.profile)

    def with_knob(self, name: str, value) -> "Pipeline":
        """Set (or with None remove) one ``-mllvm`` knob; the value is canonicalised and
        range-checked here (raises PipelineError)."""
        d = dict(self.knobs)
        if value is None:
            d.pop(name, None)
        else:
            if name not in KNOBS:
                raise PipelineError(f"unknown -mllvm knob {name!r}", "unknown-knob")
            d[name] = _canon_knob_value(KNOBS[name], value)
        return Pipeline(self.opt_level, self.flags, tuple(sorted(d.items())), self.passes, self.profile)

    def with_passes(self, passes: str | None) -> "Pipeline":
        return Pipeline(self.opt_level, self.flags, self.knobs, passes, self.profile)

    def with_profile(self, digest: str | None) -> "Pipeline":
        """Use (or with None stop using) the recorded profile with this SHA-256 (64 hex digits)."""
        return Pipeline(self.opt_level, self.flags, self.knobs, self.passes, digest)

    # -- views ----------------------------------------------------------------------------
    @property
    def is_baseline(self) -> bool:
        """True when this pipeline changes nothing: the user's own flags are used."""
        return (self.opt_level is None and not self.flags and not self.knobs and self.passes is None
                and self.profile is None)

    def clang_args(self) -> list[str]:
        """Arguments appended to the user's compile command (clang: last option wins).  The
        ``passes`` string is not here: emit.py applies it through the split route."""
        level = [f"-{self.opt_level}"] if self.opt_level else []
        return level + self.backend_clang_args() + self.profile_args()

    def backend_clang_args(self) -> list[str]:
        """What the back-end-only step of the split route (emit.py) takes of :meth:`clang_args`:
        flags and knobs, not the ``-O`` level (given on its own there) nor a profile (which
        :func:`validate` refuses with a passes string)."""
        args = []
        for family, choice in self.flags:
            args += FLAG_FAMILIES[family].choices[choice]
        for name, value in self.knobs:
            args += ["-mllvm", f"-{name}={value}"]
        return args

    def profile_args(self) -> list[str]:
        """The arguments that apply :attr:`profile` (none without one): clang's
        ``-fprofile-instr-use`` with the file in the cache directory (it takes profiles of either
        kind of instrumentation, telling them apart by the file's header), and the warnings about
        the profile off.  A function whose code changed since the profile was recorded gets no
        profile data (matched by a hash of its control flow: ClangCommandLineReference,
        "-fprofile-instr-use"); that, or a function the run never reached, is not a diagnostic the
        user's build should show or fail on under ``-Werror``.  For an IR-level profile (what
        sessions record) the mismatch is LLVM's "function control flow change detected"
        ``-Wbackend-plugin`` warning, turned off by its own option ``-no-pgo-warn-mismatch``
        (PGOInstrumentation.cpp) rather than the whole warning group; the ``-Wno-profile-instr-*``
        ones are the front-end kind's."""
        if self.profile is None:
            return []
        return [f"-fprofile-instr-use={profile_path(self.profile)}", "-Wno-profile-instr-out-of-date",
                "-Wno-profile-instr-unprofiled", "-Wno-profile-instr-missing", "-mllvm", "-no-pgo-warn-mismatch"]

    @property
    def may_change_results(self) -> bool:
        """True when a flag may change floating-point results (an ``unsafe`` family other than
        turning FP contraction off or to its default ``on``): such a pipeline was verified on one
        version of the code only."""
        return any(FLAG_FAMILIES[f].unsafe and (f, c) not in SAFE_UNSAFE_FAMILY_CHOICES for f, c in self.flags)

    def describe(self) -> list[str]:
        """Human-readable edits relative to the user's flags, e.g. ``["-O3", "unroll-threshold=600"]``."""
        out = [f"-{self.opt_level}"] if self.opt_level else []
        out += [" ".join(FLAG_FAMILIES[f].choices[c]) for f, c in self.flags]
        out += [f"{n}={v}" for n, v in self.knobs]
        if self.passes is not None:
            out.append(f"passes={self.passes}")
        if self.profile is not None:
            out.append(f"profile={self.profile[:12]}")
        return out or ["(baseline: the user's flags)"]

    def to_dict(self) -> dict:
        """Canonical JSON-able form; ``Pipeline.from_dict(p.to_dict()) == p``.  ``profile`` is
        present only when set, so pipelines without one keep the digests they had before it existed
        (object cache keys include the digest)."""
        d = {"opt_level": self.opt_level, "flags": dict(self.flags), "knobs": dict(self.knobs),
             "passes": self.passes}
        if self.profile is not None:
            d["profile"] = self.profile
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Pipeline":
        """Inverse of to_dict; raises PipelineError on a malformed dict (it does not validate
        against a Policy: call validate for that)."""
        try:
            p = Pipeline(d.get("opt_level"), tuple(sorted((str(k), str(v)) for k, v in (d.get("flags") or {}).items())))
            for name, value in sorted((d.get("knobs") or {}).items()):
                p = p.with_knob(name, value)
            return p.with_passes(d.get("passes")).with_profile(d.get("profile"))
        except (AttributeError, TypeError) as e:
            raise PipelineError(f"malformed pipeline {d!r}: {e}", "malformed") from None

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """Stable 16-hex-digit hash of the canonical form."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def __str__(self) -> str:
        return " ".join(self.describe())


BASELINE = Pipeline()


def validate(p: Pipeline, policy: Policy = Policy()) -> Pipeline:
    """Check every part of ``p`` against the allowlist and ``policy``; return ``p``.

    Raises PipelineError (with ``reason`` one of ``bad-opt-level``, ``unknown-flag``,
    ``unsafe-math``, ``isa``, ``host``, ``unknown-knob``, ``knob-unsupported``, ``bad-value``,
    ``out-of-range``, ``bad-passes``, ``conflict``, ``bad-profile``).  Whether ``opt-19`` accepts the passes string is checked by
    the session (it needs a process), not here."""
    if p.opt_level is not None and p.opt_level not in OPT_LEVELS:
        raise PipelineError(f"optimization level {p.opt_level!r} is not one of {', '.join(OPT_LEVELS)}",
                            "bad-opt-level")
    for family, choice in p.flags:
        fam = FLAG_FAMILIES.get(family)
        if fam is None or choice not in fam.choices:
            raise PipelineError(f"flag {family}={choice} is not in the allowlist", "unknown-flag")
        if fam.unsafe and (family, choice) not in SAFE_UNSAFE_FAMILY_CHOICES and not policy.allow_unsafe_math:
            raise PipelineError(f"{' '.join(fam.choices[choice])} may change floating-point results; "
                                "set allow_unsafe_math = true to allow it", "unsafe-math")
        if fam.isa and not policy.allow_native:
            raise PipelineError(f"{' '.join(fam.choices[choice])} changes the instruction set; "
                                "set allow_native = true to allow it", "isa")
        if (family, choice) in policy.host_trouble:
            raise PipelineError(f"the installed clang warns about {' '.join(fam.choices[choice])} on this host",
                                "host")
    for name, value in p.knobs:
        knob = KNOBS.get(name)
        if knob is None:
            raise PipelineError(f"unknown -mllvm knob {name!r}", "unknown-knob")
        if _canon_knob_value(knob, value) != value:
            raise PipelineError(f"knob {name} value {value!r} is not canonical", "bad-value")
        if policy.llvm_options is not None and name not in policy.llvm_options:
            raise PipelineError(f"the installed LLVM has no -mllvm -{name}", "knob-unsupported")
    if p.passes is not None:
        if not p.passes or len(p.passes) > 20000 or not _PASSES_RE.match(p.passes):
            raise PipelineError("the pass pipeline contains characters outside pass-pipeline syntax",
                                "bad-passes")
        ignored = sorted(f for f, _ in p.flags if f in PIPELINE_ONLY_FAMILIES)
        if ignored:
            raise PipelineError(f"{', '.join(ignored)} only configure clang's own pass pipeline, which a "
                                "passes string replaces; edit the passes string instead", "conflict")
        if p.profile is not None:
            # Sessions record IR-level profiles (tuning/pgo.py); clang reads one in the PGO passes of
            # its own pipeline, which the split route runs without (-disable-llvm-passes), so the
            # profile would silently do nothing.
            raise PipelineError("a profile is applied by clang's own pass pipeline, which a passes string "
                                "replaces; use one or the other", "conflict")
    if p.profile is not None and not (isinstance(p.profile, str) and _PROFILE_RE.match(p.profile)):
        raise PipelineError(f"profile {p.profile!r} is not the SHA-256 of a recorded profile", "bad-profile")
    return p


def profile_path(digest: str) -> str:
    """Where the recorded profile with SHA-256 ``digest`` is kept: ``<cache dir>/profiles/<digest>.profdata``
    (config.cache_dir; content-addressed, written once by a session, removed by ``cache clear``)."""
    from .config import cache_dir
    from .store import PROFILES_DIR
    return os.path.join(cache_dir(), PROFILES_DIR, digest + ".profdata")


def profile_intact(digest: str) -> bool:
    """True when :func:`profile_path` holds a file whose SHA-256 is ``digest`` (a missing, truncated
    or altered profile would make the object differ from the one the session measured)."""
    try:
        with open(profile_path(digest), "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest() == digest
    except (OSError, ValueError):
        return False


_FLAG_INDEX = {tokens: (fam.name, choice)
               for fam in FLAG_FAMILIES.values() for choice, tokens in fam.choices.items()}


def parse_clang_args(tokens: list[str], policy: Policy = Policy()) -> Pipeline:
    """Turn proposed argv tokens (e.g. from a model) into a validated Pipeline.

    Accepts ``-O<level>``, allowlisted flags, and ``-mllvm -<knob>=<value>`` (also the one-token
    ``-mllvm=-knob=value`` is refused: only the two-token form).  Everything else -- ``-fplugin=``,
    ``-Xclang``, ``-B``, ``-o``, ``@file``, ``-specs``, ``-include``, paths, shell text -- raises
    PipelineError with reason ``forbidden-flag`` naming the token."""
    p = Pipeline()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not isinstance(tok, str):
            raise PipelineError(f"token {tok!r} is not a string", "forbidden-flag")
        if re.fullmatch(r"-O[123sz]", tok):
            p = p.with_opt_level(tok[1:])
        elif tok == "-mllvm":
            if i + 1 >= len(tokens):
                raise PipelineError("-mllvm without a knob", "forbidden-flag")
            m = re.fullmatch(r"--?([a-z0-9-]+)(?:=(.*))?", tokens[i + 1])
            if not m or m.group(1) not in KNOBS:
                raise PipelineError(f"-mllvm {tokens[i + 1]!r} is not an allowlisted knob", "unknown-knob")
            knob = KNOBS[m.group(1)]
            value = m.group(2) if m.group(2) is not None else ("true" if knob.kind == "bool" else None)
            if value is None:
                raise PipelineError(f"-mllvm -{knob.name} needs a value", "bad-value")
            p = p.with_knob(knob.name, value)
            i += 1
        elif (tok,) in _FLAG_INDEX:
            p = p.with_flag(*_FLAG_INDEX[(tok,)])
        else:
            raise PipelineError(f"{tok!r} is not an allowlisted flag", "forbidden-flag")
        i += 1
    return validate(p, policy)
