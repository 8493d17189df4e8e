"""A session's budget is spent on candidates that change the code: moves whose objects are
byte-identical to the incumbent's are recognised before the link, are not charged to the budget,
and cannot end the session before the budget is spent -- yet a proposer that never changes the
code still ends it at the cap on free trials.  Real clang-19 and a real two-TU program; only the
proposer is scripted (make_proposer is replaced in-process)."""

from __future__ import annotations

import os

import pytest

from conftest import run, write_project

from autopass_cc import config
from autopass_cc.pipeline import Pipeline
from autopass_cc.tuning import session as session_mod
from autopass_cc.tuning.proposers.base import Proposal, Proposer

pytestmark = pytest.mark.slow

SRC = {
    "main.c": '#include <stdio.h>\nint work(int);\nint main(int c, char **v){printf("%d\\n", work(c));return 0;}\n',
    # No calls: inlining knobs cannot change its object.
    "work.c": "int work(int n){int s=0;for(int i=0;i<n*1000;i++) s+=i*i%7;return s;}\n",
}


class Scripted(Proposer):
    """``free`` moves that change no code (inline-threshold on a TU without calls), then ``real`` moves
    that do; None when the script is exhausted."""
    name = "scripted"

    def __init__(self, tu_id: str, free: int, real: list):
        super().__init__()
        self.moves = [Pipeline().with_knob("inline-threshold", 10 + 10 * i) for i in range(free)] + real
        self.tu_id = tu_id

    def ask(self, state):
        if not self.moves:
            return None
        p = self.moves.pop(0)
        return Proposal({self.tu_id: p}, "scripted", "scripted", p.describe())


def _project(tmp_path, wrapper, env, monkeypatch, src=SRC, opt="-O3") -> str:
    d = write_project(str(tmp_path / "p"), src)
    for name in src:
        run([wrapper, opt, "-c", name], d, env)
    run([wrapper, "main.o", "work.o", "-o", "prog"], d, env)
    _project_env(env, monkeypatch)
    return d


def _project_env(env, monkeypatch) -> None:
    """This process's environment as the wrapper's in ``env`` (cache, config), for in-process sessions."""
    for k in list(os.environ):
        if k.startswith(("AUTOPASS_", "OPENAI_")):
            monkeypatch.delenv(k)
    for k, v in env.items():
        if k.startswith("AUTOPASS_") or k == "XDG_CONFIG_HOME":
            monkeypatch.setenv(k, v)


def _work_id(d, tmp_path) -> str:
    from autopass_cc.tuning.program import Program
    return next(t.tu_id for t in Program(d, "prog", str(tmp_path / "probe")).tus if t.source.endswith("work.c"))


def _session(d, monkeypatch, proposer, budget):
    monkeypatch.setattr(session_mod, "make_proposer", lambda *a, **k: proposer)
    s = session_mod.Session(d, config.load(d, {"budget": budget}), progress=False, note=lambda m: None,
                            store_results=False)
    return s, s.run()


def test_free_moves_do_not_end_the_session_before_the_budget(tmp_path, wrapper, env, monkeypatch):
    d = _project(tmp_path, wrapper, env, monkeypatch)
    work = _work_id(d, tmp_path)
    real = [Pipeline().with_opt_level("O1"), Pipeline().with_opt_level("Os")]
    # 10 free moves: more than the old cap of 3 x budget trials in all (6), fewer than the new cap.
    s, report = _session(d, monkeypatch, Scripted(work, 10, real), budget=2)
    verdicts = [t["verdict"] for t in report["trials"]]
    assert verdicts[:10] == ["same-binary"] * 10, verdicts
    assert all("object" in t["reason"] for t in report["trials"][:10])
    assert len(verdicts) == 12 and "same-binary" not in verdicts[10:], verdicts      # the budget, spent
    # The free trials were caught before linking: one link for the baseline, one for the
    # instrumented build that records the profile (tuning/pgo.py), one per measured trial.
    assert "pgo" in report and s.program._links == 4


def test_a_proposer_that_never_changes_the_code_ends_at_the_cap(tmp_path, wrapper, env, monkeypatch):
    d = _project(tmp_path, wrapper, env, monkeypatch)
    work = _work_id(d, tmp_path)
    cap = max(session_mod.FREE_TRIALS_PER_BUDGET, session_mod.FREE_TRIALS_MIN)
    s, report = _session(d, monkeypatch, Scripted(work, cap + 20, []), budget=1)
    assert [t["verdict"] for t in report["trials"]] == ["same-binary"] * cap
    assert any("changed no code" in n for n in report["notes"]), report["notes"]
    assert s.program._links == 2          # the baseline and the instrumented build (tuning/pgo.py)


def test_stored_status_tells_tuned_from_untouched_tus(tmp_path, wrapper, env, monkeypatch):
    """A hot TU no trial changed (the budget went to another) is not reported as tuned."""
    d = _project(tmp_path, wrapper, env, monkeypatch)
    work = _work_id(d, tmp_path)
    monkeypatch.setattr(session_mod, "make_proposer",
                        lambda *a, **k: Scripted(work, 0, [Pipeline().with_opt_level("O1")]))
    report = session_mod.Session(d, config.load(d, {"budget": 1}), progress=False, note=lambda m: None).run()
    status = {s["source"]: s["status"] for s in report["stored"]}
    assert status["work.c"] in ("won", "tuned; no significant gain over the user's flags"), status
    assert status["main.c"] == "hot, but no trial changed it within the budget", status


SLOW_SRC = {
    "main.c": '#include <stdio.h>\nunsigned work(unsigned);\nint main(void){printf("%u\\n", work(3000));return 0;}\n',
    # Built at -O0 by the user: -O2 is several times faster, a win no noise can hide.
    "work.c": "unsigned work(unsigned n){unsigned s=0;for(unsigned i=0;i<n*20000;i++) s+=i*i%7;return s;}\n",
}


def test_sessions_remember_what_was_measured_and_keep_earlier_wins(tmp_path, wrapper, env, monkeypatch):
    """A second session on the same build does not measure again what the first measured, and a
    session that finds nothing does not replace a pipeline an earlier session won with."""
    d = _project(tmp_path, wrapper, env, monkeypatch, src=SLOW_SRC, opt="-O0")
    work = _work_id(d, tmp_path)
    # (a knob without an optimization level changes nothing at the user's -O0: not accepted)
    fast, other = Pipeline().with_opt_level("O2"), Pipeline().with_knob("inline-threshold", 10)

    def session(moves):
        monkeypatch.setattr(session_mod, "make_proposer", lambda *a, **k: Scripted(work, 0, list(moves)))
        return session_mod.Session(d, config.load(d, {"budget": 2}), progress=False, note=lambda m: None).run()

    first = session([fast])
    assert first["winner"] and {s["source"]: s["status"] for s in first["stored"]}["work.c"] == "won", first
    second = session([other])
    third = session([other])
    assert [t["config"] for t in third["trials"]] == [], third["trials"]     # measured by the second: skipped
    assert any("earlier sessions" in n for n in third["notes"]), third["notes"]
    for rep in (second, third):
        status = {s["source"]: s["status"] for s in rep["stored"]}
        assert status["work.c"].startswith("kept: won in session"), status
    s = Session_store_entry(work, d)
    assert s["pipeline"]["opt_level"] == "O2"
    # `cache clear` starts over: the history of the sessions before it is not gone by
    from autopass_cc.store import open_store
    store = open_store()
    try:
        store.clear()
    finally:
        store.close()
    fourth = session([other])
    assert len(fourth["trials"]) == 1 and not any("earlier sessions" in n for n in fourth["notes"]), fourth


def Session_store_entry(work_id, project):
    from autopass_cc.store import open_store
    store = open_store()
    try:
        return store.get_by_tu(work_id)
    finally:
        store.close()


def test_a_diagnosis_collects_the_incumbents_evidence_once(tmp_path, wrapper, env, monkeypatch):
    """Diagnosing two candidates against one incumbent compiles the incumbent's evidence once (on
    sqlite3.c that is minutes per diagnosis); a candidate with a profile gets the trial's compile
    limit, not twice it (optimization records with a profile can be far slower)."""
    from autopass_cc.tuning import evidence
    d = _project(tmp_path, wrapper, env, monkeypatch)
    work = _work_id(d, tmp_path)
    s, _ = _session(d, monkeypatch, Scripted(work, 0, []), 1)
    calls = []
    real = evidence.collect

    def counting(compiler, args, cwd, pipeline, workdir, **kw):
        calls.append((pipeline.digest(), kw.get("timeout_s")))
        return real(compiler, args, cwd, pipeline, workdir, **kw)
    monkeypatch.setattr(evidence, "collect", counting)
    a, b = Pipeline().with_knob("unroll-threshold", 600), Pipeline().with_opt_level("O1")
    for p in (a, b):
        out = s._diagnose(Proposal({work: p}, "x", "scripted", p.describe()), {})
        assert "no diagnosis" not in str(out), out
    assert [c[0] for c in calls] == [Pipeline().digest(), a.digest(), b.digest()]
    limit = s.program.compile_limit(s.program.tu(work))
    assert calls[1][1] == 2 * limit
    calls.clear()
    prof = Pipeline().with_profile("ab" * 32)
    s._diagnose(Proposal({work: prof}, "x", "scripted", prof.describe()), {})
    assert calls == [(prof.digest(), limit)]


def test_without_a_terminal_each_timed_trial_is_one_line(tmp_path, wrapper, env, monkeypatch):
    """No progress bar without a terminal (logs, pipes): a line per timed trial shows a long session
    is alive; same-binary trials and `--quiet` (progress off) print none."""
    d = _project(tmp_path, wrapper, env, monkeypatch)
    work = _work_id(d, tmp_path)
    real = [Pipeline().with_opt_level("O1"), Pipeline().with_knob("unroll-count", 4)]
    monkeypatch.setattr(session_mod, "make_proposer", lambda *a, **k: Scripted(work, 2, list(real)))
    notes = []
    session_mod.Session(d, config.load(d, {"budget": 2}), progress=True, note=notes.append, store_results=False).run()
    trials = [n for n in notes if n.startswith("trial ")]
    # numbered as in the report (the two same-binary trials first), with the budget spent so far
    # and the same-binary ones (else the numbers seem to skip)
    assert [n.split(":")[0] for n in trials] == [
        "trial 3 (1/2 of the budget; 2 same-binary so far, not timed)",
        "trial 4 (2/2 of the budget; 2 same-binary so far, not timed)"], notes
    assert "work.c: -O1 ->" in trials[0] and "work.c: unroll-count=4 ->" in trials[1]   # (the TU it changed)
    assert any(n.startswith("baseline: ") for n in notes), notes   # the phases before the trials
    notes.clear()
    monkeypatch.setattr(session_mod, "make_proposer", lambda *a, **k: Scripted(work, 0, list(real)))
    session_mod.Session(d, config.load(d, {"budget": 2}), progress=False, note=notes.append, store_results=False).run()
    assert not [n for n in notes if n.startswith("trial ")]


@pytest.mark.parametrize("why", ["callgrind fails", "run too long for callgrind"])
def test_without_callgrind_the_instrumentation_profile_finds_the_hot_tus(tmp_path, wrapper, env, monkeypatch, why):
    """When callgrind cannot profile the run (here: valgrind "missing"; on real jq and expat it
    timed out), or the run is too long to try (CALLGRIND_MAX_S), the session records its
    instrumentation profile with every TU instrumented and takes the hot TUs from its counters --
    one instrumented build, whose profile the profile-guided candidates then use -- instead of
    tuning every TU blind."""
    from autopass_cc.tuning import profile as profile_mod
    d = _project(tmp_path, wrapper, env, monkeypatch)
    work = _work_id(d, tmp_path)
    tried = []

    def no_valgrind():
        tried.append(1)
        raise profile_mod.ProfileError("valgrind not found")
    monkeypatch.setattr(profile_mod, "_valgrind", no_valgrind)
    if why == "run too long for callgrind":
        monkeypatch.setattr(session_mod, "CALLGRIND_MAX_S", 0.0)
    monkeypatch.setenv("AUTOPASS_PROFILE", "auto")  # (the tests' default is "none")
    s, report = _session(d, monkeypatch, Scripted(work, 0, []), budget=1)
    assert bool(tried) == (why == "callgrind fails")
    assert any(("too long for callgrind" in n) == (why != "callgrind fails") for n in report["notes"])
    assert report["profiled"] is True, report["notes"]
    assert [t["tu"] for t in report["tus"]] == [work], report["tus"]   # main.c: a call, no loop
    assert report["tus"][0]["weight"] > 0.9 and report["tus"][0]["hot_functions"][0][0] == "work"
    assert any("instrumentation profile of every TU" in n for n in report["notes"]), report["notes"]
    assert "pgo" in report and s.program._links == 2   # the baseline and one instrumented build


def test_a_callgrind_timeout_is_remembered_for_the_next_session(tmp_path, wrapper, env, monkeypatch):
    """On pixman (a 1.9 s run), callgrind timed out after 116 s in each of two sessions: the
    second one now goes to the instrumentation profile at once, and says why."""
    from autopass_cc.tuning import profile as profile_mod
    d = _project(tmp_path, wrapper, env, monkeypatch)
    work = _work_id(d, tmp_path)
    tried = []

    def times_out(cmd, cwd, timeout_s, workdir, skip):
        tried.append(timeout_s)
        raise profile_mod.CallgrindTimeout(f"the run command timed out under callgrind after {timeout_s:.0f} s")
    monkeypatch.setattr(profile_mod, "_run_callgrind", times_out)
    monkeypatch.setattr(profile_mod, "_valgrind", lambda: "/usr/bin/valgrind")
    monkeypatch.setenv("AUTOPASS_PROFILE", "auto")  # (the tests' default is "none")
    _s, report = _session(d, monkeypatch, Scripted(work, 0, []), budget=1)
    assert len(tried) == 1 and report["profiled"] is True, report["notes"]
    _s, report = _session(d, monkeypatch, Scripted(work, 0, []), budget=1)
    assert len(tried) == 1, "the second session ran callgrind again"
    assert any("timed out on this run command in an earlier session" in n for n in report["notes"]), report["notes"]
    assert report["profiled"] is True and [t["tu"] for t in report["tus"]] == [work]


def test_tuning_at_the_link_says_when_a_tuned_library_needs_a_rebuild(tmp_path, wrapper, env, monkeypatch):
    """on_miss = "link": the session runs at the executable's link, when the build tree's shared
    libraries are linked already; a TU it tuned in one of them takes effect only when that
    library is rebuilt, and the session says so (seen on expat: 1.034x reported, 1.010x measured
    after that build, 1.040x after a clean rebuild)."""
    from autopass_cc.tuning import onlink
    d = write_project(str(tmp_path / "p"), SLOW_SRC)
    run([wrapper, "-O0", "-fPIC", "-c", "work.c"], d, env)
    run([wrapper, "-shared", "-o", "libwork.so", "work.o"], d, env)
    run([wrapper, "-O0", "-c", "main.c"], d, env)
    run([wrapper, "main.o", "-L.", "-lwork", "-Wl,-rpath,$ORIGIN", "-o", "prog"], d, dict(env, AUTOPASS_TUNE="0"))
    _project_env(env, monkeypatch)
    work = _work_id(d, tmp_path)
    monkeypatch.setattr(session_mod, "make_proposer",
                        lambda *a, **k: Scripted(work, 0, [Pipeline().with_opt_level("O2")]))
    notes = []
    onlink.tune_at_link(d, config.load(d, {"budget": 1}), notes.append)
    assert any(n.startswith("session done: speedup") for n in notes), notes
    assert any("tuned TUs of libwork.so take effect when that library is rebuilt" in n for n in notes), notes


def test_no_search_when_the_build_compiled_almost_none_of_the_run(tmp_path, wrapper, env, monkeypatch):
    """The run's work is in an object the build did not compile through autopass-cc (here plain
    clang-19; on lz4, a multi-source compile passed through before it was split): the session says
    so and spends no trial, rather than timing noise for the whole budget."""
    d = write_project(str(tmp_path / "p"), SRC)
    run(["clang-19", "-O3", "-c", "work.c"], d, env)              # not through autopass-cc
    run([wrapper, "-O3", "-c", "main.c"], d, env)
    run([wrapper, "main.o", "work.o", "-o", "prog"], d, env)
    _project_env(env, monkeypatch)
    monkeypatch.setenv("AUTOPASS_PROFILE", "callgrind")            # (the tests' default is "none")
    asked = []

    class Never(Proposer):
        name = "never"

        def ask(self, state):
            asked.append(state)
            return None
    s, report = _session(d, monkeypatch, Never(), budget=3)
    assert report["profiled"] is True and not asked and report["trials"] == []
    assert any("no trial could measure a difference, so the search is skipped" in n for n in report["notes"]), report["notes"]
    assert "pgo" not in report and s.program._links == 1          # the baseline only: nothing instrumented


def test_a_long_trial_line_says_where_its_time_went():
    """QuickJS: two trials took 273-315 s against 35-60 s for the others, and the line did not say
    whether compiling (quickjs.c with a high inline threshold) or measuring took it."""
    from autopass_cc.tuning.proposers.base import TrialResult
    from autopass_cc.tuning.session import _took
    assert _took(TrialResult(9, None, "slower", seconds=315.2, rounds=8, build_seconds=251.0)) == \
        "315 s: build 251 s, 8 rounds"
    assert _took(TrialResult(2, None, "faster", seconds=45.0, rounds=13, build_seconds=4.0)) == "45 s"
