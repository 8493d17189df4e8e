"""tuning/pgo.py's refusals, before anything is built (the recording itself runs on a real program
in tests/integration/test_end_to_end.py)."""

from types import SimpleNamespace

import pytest

from autopass_cc.tuning.pgo import NotRecorded, record, user_profile_option


@pytest.mark.parametrize("opt", ["-fprofile-instr-use=old.profdata", "-fprofile-use", "-fprofile-sample-use=x.prof",
                                 "-fprofile-instr-generate", "--coverage", "-fsanitize=address"])
def test_a_build_with_its_own_profile_or_instrumentation_is_left_alone(opt):
    tus = [SimpleNamespace(tu_id="a", rel="a.c", args=["-O3", "-c", "a.c"]),
           SimpleNamespace(tu_id="b", rel="src/b.c", args=["-O3", opt, "-c", "src/b.c"])]
    program = SimpleNamespace(tus=tus, link_config=lambda *a, **k: pytest.fail("nothing may be built"))
    with pytest.raises(NotRecorded, match=f"src/b.c is already compiled with {opt}"):
        record(program, ["a", "b"], run=None, check=None, workdir="/nonexistent")


def test_options_that_only_look_alike_are_not_taken_for_profiles():
    assert user_profile_option(["-O3", "-fprofile", "-fno-profile-arcs-x", "-c", "a.c"]) is None
    assert user_profile_option(["-fprofile-instr-use=p"]) == "-fprofile-instr-use=p"


def test_a_stale_ir_profile_never_fails_a_werror_build(tmp_path, monkeypatch):
    """Sessions record IR-level profiles (program.INSTRUMENT).  When a TU changes after a session,
    clang-19 reports its functions' hash mismatch as a -Wbackend-plugin warning, an error under
    -Werror; the tuned pipeline's profile_args must keep such a build compiling (and the profile is
    really used: the object differs from one built without it)."""
    import hashlib
    import os
    import shutil
    import subprocess
    from autopass_cc.pipeline import Pipeline, profile_path
    from autopass_cc.tuning.program import INSTRUMENT
    monkeypatch.setenv("AUTOPASS_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "p.c"
    src.write_text("int work(int n) { int s = 0; for (int i = 0; i < n; i++) s += (i % 3) ? i : -i; return s; }\n"
                   "int main(int argc, char **argv) { (void)argv; return work(100000 * argc) & 1; }\n")
    exe, raw = str(tmp_path / "p"), str(tmp_path / "raw")
    subprocess.run(["clang-19", "-O3", INSTRUMENT, str(src), "-o", exe], check=True)
    subprocess.run([exe], env=dict(os.environ, LLVM_PROFILE_FILE=raw + "/%p.profraw"))
    merged = tmp_path / "m.profdata"
    subprocess.run(["llvm-profdata-19", "merge", "-o", str(merged)] + [os.path.join(raw, f) for f in os.listdir(raw)],
                   check=True)
    digest = hashlib.sha256(merged.read_bytes()).hexdigest()
    os.makedirs(os.path.dirname(profile_path(digest)))
    shutil.copy(merged, profile_path(digest))
    args = Pipeline().with_profile(digest).clang_args()
    compile_ = lambda extra, out: subprocess.run(["clang-19", "-O3", "-Wall", "-Werror", "-c", str(src), "-o", out]
                                                 + extra, capture_output=True, text=True)
    r = compile_(args, str(tmp_path / "pgo.o"))
    assert r.returncode == 0, r.stderr
    compile_([], str(tmp_path / "plain.o"))
    assert (tmp_path / "pgo.o").read_bytes() != (tmp_path / "plain.o").read_bytes()
    src.write_text(src.read_text().replace("(i % 3) ? i : -i", "(i % 3) ? i : (i & 1 ? -i : 2 * i)"))
    bare = compile_([a for a in args if a.startswith("-fprofile-instr-use=")], str(tmp_path / "stale.o"))
    assert bare.returncode != 0 and "hash mismatch" in bare.stderr   # what the user would have hit
    r = compile_(args, str(tmp_path / "stale.o"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
