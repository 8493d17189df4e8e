"""Pipeline value, allowlist and validation: what may reach a command line and what may not."""

import os

import pytest

from autopass_cc.errors import PipelineError
from autopass_cc.pipeline import FLAG_FAMILIES, KNOBS, Pipeline, Policy, parse_clang_args, validate


def test_round_trip_and_stable_digest():
    p = (Pipeline().with_opt_level("O2").with_knob("unroll-threshold", 600).with_knob("unroll-runtime", True)
         .with_flag("slp-vectorize", "off").with_passes("default<O2>"))
    q = Pipeline.from_dict(p.to_dict())
    assert q == p and q.digest() == p.digest() and len(p.digest()) == 16
    # Construction order does not change the canonical form.
    r = (Pipeline().with_flag("slp-vectorize", "off").with_knob("unroll-runtime", "true")
         .with_knob("unroll-threshold", "600").with_opt_level("O2").with_passes("default<O2>"))
    assert r.canonical_json() == p.canonical_json()


def test_clang_args_order_and_baseline():
    assert Pipeline().is_baseline and Pipeline().clang_args() == []
    p = Pipeline().with_opt_level("O3").with_flag("unroll-loops", "on").with_knob("inline-threshold", 500)
    assert p.clang_args() == ["-O3", "-funroll-loops", "-mllvm", "-inline-threshold=500"]
    assert not p.is_baseline


@pytest.mark.parametrize("name,value,reason", [
    ("inline-threshold", 999999, "out-of-range"),
    ("inline-threshold", "12; rm -rf /", "bad-value"),
    ("unroll-runtime", "maybe", "bad-value"),
    ("force-vector-width", -4, "out-of-range"),
])
def test_knob_values_are_typed_and_ranged(name, value, reason):
    with pytest.raises(PipelineError) as e:
        Pipeline().with_knob(name, value)
    assert e.value.reason == reason


def test_unknown_knob_refused():
    with pytest.raises(PipelineError) as e:
        Pipeline().with_knob("load", "/tmp/evil.so")
    assert e.value.reason == "unknown-knob"


@pytest.mark.parametrize("tokens", [
    ["-fplugin=/tmp/evil.so"], ["-Xclang", "-load", "-Xclang", "/tmp/evil.so"], ["-B/tmp"], ["-o", "/etc/passwd"],
    ["@/tmp/args"], ["-specs=/tmp/x"], ["-include", "/etc/shadow"], ["/tmp/x.c"], ["; rm -rf /"], ["$(reboot)"],
    ["-mllvm", "-load=/tmp/evil.so"], ["-O9"], ["-Ofast"], ["-ffast-math"], ["-march=native"], ["-fpass-plugin=x.so"],
    ["-mllvm"], ["-Wl,-rpath,/tmp"], [7],
])
def test_parse_clang_args_refuses_everything_off_the_allowlist(tokens):
    with pytest.raises(PipelineError):
        parse_clang_args(tokens)


def test_parse_clang_args_accepts_allowlisted_text():
    p = parse_clang_args(["-O2", "-fno-slp-vectorize", "-mllvm", "-unroll-threshold=700", "-mllvm", "-unroll-runtime"])
    assert p.opt_level == "O2" and dict(p.knobs) == {"unroll-threshold": "700", "unroll-runtime": "true"}
    assert dict(p.flags) == {"slp-vectorize": "off"}


def test_unsafe_math_and_native_need_opt_in():
    fast = Pipeline().with_flag("fast-math", "on")
    native = Pipeline().with_flag("march", "native")
    with pytest.raises(PipelineError) as e:
        validate(fast)
    assert e.value.reason == "unsafe-math"
    with pytest.raises(PipelineError) as e:
        validate(native)
    assert e.value.reason == "isa"
    validate(fast, Policy(allow_unsafe_math=True))
    validate(native, Policy(allow_native=True))
    validate(Pipeline().with_flag("fp-contract", "off"))   # turning contraction off is always allowed


def test_knob_missing_from_installed_llvm_is_refused():
    p = Pipeline().with_knob("inline-threshold", 300)
    with pytest.raises(PipelineError) as e:
        validate(p, Policy(llvm_options=frozenset({"unroll-threshold"})))
    assert e.value.reason == "knob-unsupported"


@pytest.mark.parametrize("passes", ["default<O3>;x; rm", "a b", "x|y", "../../etc", "", "p'q"])
def test_pass_strings_are_syntax_only(passes):
    with pytest.raises(PipelineError):
        validate(Pipeline().with_passes(passes))


def test_every_knob_exists_in_installed_llvm():
    """The allowlist is checked against clang-19 -mllvm --help-hidden of the installed LLVM."""
    import shutil
    if not shutil.which("clang-19"):
        pytest.skip("clang-19 not installed")
    from autopass_cc.toolchain import llvm_option_names
    names = llvm_option_names("clang-19")
    missing = [k for k in KNOBS if k not in names]
    assert not missing, missing
    for fam in FLAG_FAMILIES.values():
        assert fam.choices


def test_every_flag_choice_is_accepted_by_clang(tmp_path):
    """Each allowlisted flag family's choices, as argv, compile with the installed clang-19 without a
    diagnostic (an option clang does not know, or ignores, is an error here) -- or, for a choice
    that depends on the host (``-march=native``), the host probe sessions use
    (toolchain.host_flag_trouble) finds the diagnostic and the policy refuses the choice."""
    import shutil
    import subprocess
    from autopass_cc.toolchain import host_flag_trouble
    if not shutil.which("clang-19"):
        pytest.skip("clang-19 not installed")
    trouble = host_flag_trouble("clang-19")
    src = tmp_path / "x.c"
    src.write_text("int f(const int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += a[i] * 3; return s; }\n")
    for name, fam in FLAG_FAMILIES.items():
        for choice, argv in fam.choices.items():
            r = subprocess.run(["clang-19", "-O2", "-Werror", "-Wunused-command-line-argument", *argv, "-c", str(src),
                                "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
            clean = r.returncode == 0 and not r.stderr
            assert clean == ((name, choice) not in trouble), (name, choice, r.stderr)
            if not clean:
                policy = Policy(allow_unsafe_math=True, allow_native=True, host_trouble=trouble)
                with pytest.raises(PipelineError) as e:
                    validate(Pipeline().with_flag(name, choice), policy)
                assert e.value.reason == "host"


def test_passes_with_pipeline_only_flags_is_a_conflict():
    p = Pipeline().with_passes("default<O3>").with_flag("vectorize", "off")
    with pytest.raises(PipelineError) as e:
        validate(p)
    assert e.value.reason == "conflict"
    validate(Pipeline().with_passes("default<O3>").with_flag("math-errno", "off"))


def test_may_change_results():
    assert Pipeline().with_flag("fast-math", "on").may_change_results
    assert Pipeline().with_flag("fp-contract", "fast").may_change_results
    assert not Pipeline().with_flag("fp-contract", "off").may_change_results
    assert not Pipeline().with_flag("fp-contract", "on").may_change_results
    assert not Pipeline().with_knob("unroll-threshold", 500).with_flag("unroll-loops", "on").may_change_results


def test_stale_fast_math_pipeline_is_not_served():
    """A value-changing pipeline tuned for yesterday's source is a miss for today's."""
    from autopass_cc.cachekey import CacheKey
    from autopass_cc.wrapper import lookup

    class FakeStore:
        def __init__(self, entry):
            self.entry = entry

        def get_tuned(self, digest):
            return None

        def get_by_tu(self, tu_id):
            return self.entry
    key = CacheKey("new-digest", "tu", {})
    settings = {"allow_unsafe_math": True}
    fast = {"pipeline": Pipeline().with_flag("fast-math", "on").to_dict()}
    assert lookup(FakeStore(fast), key, settings)[:2] == (None, "miss")
    safe = {"pipeline": Pipeline().with_knob("unroll-threshold", 500).to_dict()}
    assert lookup(FakeStore(safe), key, settings)[1] == "stale"


def test_a_profile_is_named_by_digest_only_and_checked_against_its_bytes(tmp_path, monkeypatch):
    import hashlib
    from autopass_cc.pipeline import profile_intact, profile_path
    monkeypatch.setenv("AUTOPASS_CACHE_DIR", str(tmp_path))
    data = b"not really a profdata, but bytes with a digest"
    digest = hashlib.sha256(data).hexdigest()
    p = validate(Pipeline().with_knob("inline-threshold", 500).with_profile(digest).with_opt_level("O2"))
    assert Pipeline.from_dict(p.to_dict()) == p and not p.is_baseline and str(p).endswith(f"profile={digest[:12]}")
    path = str(tmp_path / "profiles" / f"{digest}.profdata")
    assert profile_path(digest) == path
    assert p.clang_args()[:3] == ["-O2", "-mllvm", "-inline-threshold=500"]
    assert p.clang_args()[3:] == [f"-fprofile-instr-use={path}", "-Wno-profile-instr-out-of-date",
                                  "-Wno-profile-instr-unprofiled", "-Wno-profile-instr-missing",
                                  "-mllvm", "-no-pgo-warn-mismatch"]
    # the back end of the split route gets neither the -O level (given on its own) nor the profile
    assert p.backend_clang_args() == ["-mllvm", "-inline-threshold=500"]
    # nor does the split route take a profile at all: an IR-level one is applied inside clang's
    # own pass pipeline, which a passes string replaces
    with pytest.raises(PipelineError) as e:
        validate(p.with_passes("function(instcombine)"))
    assert e.value.reason == "conflict"
    for bad in ("../../etc/passwd", digest.upper(), digest[:-1], "/tmp/x.profdata"):
        with pytest.raises(PipelineError) as e:
            validate(Pipeline().with_profile(bad))
        assert e.value.reason == "bad-profile"
    assert not profile_intact(digest)                      # missing
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(data[:-1])
    assert not profile_intact(digest)                      # truncated
    with open(path, "wb") as f:
        f.write(data)
    assert profile_intact(digest)


def test_pipelines_without_a_profile_keep_their_digests():
    # Object-cache keys include the pipeline digest: adding the profile field must not change the
    # digest of any pipeline stored before it existed (value computed before the field was added).
    assert Pipeline().with_knob("inline-threshold", 500).digest() == "87609de5b444b73c"
    assert "profile" not in Pipeline().with_knob("inline-threshold", 500).to_dict()
