"""Whole tuning sessions with the LLM proposer: through a scripted OpenAI-compatible server (valid,
forbidden and malformed replies) and against the real local model.  Every proposal is either
validated or refused with a reason, the transcript is saved without the key, and the report says
which agent proposed what."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run
from openai_server import ScriptedOpenAIServer, by_role

pytestmark = pytest.mark.slow
SECRET = "sk-test-secret-0123456789"


def _tu_ids(project):
    ids = {}
    for line in open(os.path.join(project, ".autopass", "buildlog.jsonl")):
        r = json.loads(line)
        if r["kind"] == "compile":
            ids[os.path.basename(r["source"])] = r["tu_id"]
    return ids


def _setup(wrapper, env, program, llm_table: str, budget: int):
    d = program("kernels-make")
    with open(os.path.join(d, "autopass.toml"), "w") as f:
        f.write(f'run = "./kernels 40"\ntarget = "kernels"\nbudget = {budget}\non_miss = "off"\n'
                f'max_tus = 8\nproposer = "llm"\n[llm]\n{llm_table}\n')
    run(["make", f"CC={wrapper}", "-j2"], d, env)
    return d


def test_session_through_a_scripted_server(wrapper, env, program):
    with ScriptedOpenAIServer() as srv:
        d = _setup(wrapper, env, program, f'base_url = "{srv.base_url}"\nmodel = "test-model"\napi_key = "{SECRET}"\n'
                   'analyst = false\ndiagnoser = false\ntools = false\n', budget=4)
        ids = _tu_ids(d)

        def plan(tu, edits):
            return {"json": {"tu": ids[tu], "rationale": "scripted", "edits": edits}}
        srv.default = by_role(planner=[
            plan("matmul.c", [{"kind": "knob", "name": "unroll-threshold", "value": 600}]),
            plan("intk.c", [{"kind": "flag", "name": "-fplugin=/tmp/evil.so"}]),      # refused, fed back
            {"content": "this is not JSON {"},                                           # refused again
            plan("stencil.c", [{"kind": "knob", "name": "inline-threshold", "value": 400}]),
        ])
        r = run([wrapper, "tune", "--json", "--quiet"], d, env)
    report = json.loads(r.stdout)
    assert report["proposer"] == "llm"
    agents = [t["agent"] for t in report["trials"]]
    assert agents[0] == "llm:planner" and "llm:planner" in agents[1:]
    assert any(not a.startswith("llm:") for a in agents), agents      # the refused ask went to the fallback
    notes = report["proposer_notes"]
    assert notes["refusals"].get("forbidden-flag") == 1 and notes["refusals"].get("malformed-json") == 1
    text = json.dumps(report)
    assert "plugin" not in json.dumps([t["changes"] for t in report["trials"]])
    transcript = os.path.join(os.path.dirname(report["files"]["json"]), "transcript.jsonl")
    body = open(transcript).read()
    assert body.count("\n") >= 4 and SECRET not in body and SECRET not in text


def test_unreachable_endpoint_falls_back_in_one_line(wrapper, env, program):
    d = _setup(wrapper, env, program, 'base_url = "http://127.0.0.1:9/v1"\nmodel = "m"\ntimeout = 2\nretries = 0\n', 2)
    r = run([wrapper, "tune", "--json", "--quiet"], d, env)
    report = json.loads(r.stdout)
    assert len(report["trials"]) >= 2 and all(not t["agent"].startswith("llm:") for t in report["trials"])
    lines = [l for l in r.stderr.splitlines() if "autopass-cc:" in l]
    assert len(lines) == 1 and "offline" in lines[0], r.stderr


@pytest.mark.llm
def test_session_with_the_real_local_model(wrapper, env, program):
    from autopass_cc.tuning import localmodel
    ok, why = localmodel.available()
    if not ok:
        pytest.skip(f"local model not installed: {why}")
    base_url, proc = localmodel.start_local_server(threads=1)
    try:
        d = _setup(wrapper, env, program,
                   f'base_url = "{base_url}"\nmodel = "{proc.model_alias}"\nschema_mode = "auto"\ntimeout = 180\n'
                   'prompt_budget_chars = 6000\nreply_tokens = 256\nmax_calls = 20\n', budget=3)
        r = run([wrapper, "tune", "--json", "--quiet"], d, env, timeout=1500)
    finally:
        localmodel.stop(proc)
    report = json.loads(r.stdout)
    notes = report["proposer_notes"]
    # Spending the call budget is a normal end (same-binary trials are free, so a session may ask
    # more often than its trial budget); any other failure is not.
    assert report["proposer"] == "llm" and notes["calls"] >= 1, notes
    assert not notes["failed_reason"] or notes["failed_reason"].startswith("call budget spent"), notes
    assert notes["planner_replies"] >= 1
    for t in report["trials"]:
        # Every trial that came from the model was validated (it has a pipeline); refused replies
        # never became trials but are counted with their reasons.
        assert t["changes"] and t["verdict"] in ("faster", "slower", "inconclusive", "failed", "same-binary")
    assert sum(notes["refusals"].values()) + notes["valid_replies"] >= notes["planner_replies"]
    assert os.path.getsize(notes["transcript"]) > 0
    print("real-model session:", json.dumps({"trials": [(t["agent"], t["edits"], t["verdict"]) for t in report["trials"]],
                                             "notes": notes}))
