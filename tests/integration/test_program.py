"""The session's relink (tuning/program.py) on real link lines: objects in a response file and a
TU inside a static archive must both be replaced by the candidate's objects."""

from __future__ import annotations

import hashlib
import os
import subprocess

from conftest import run, write_project

from autopass_cc.pipeline import Pipeline
from autopass_cc.tuning.program import Program

SRC = {
    "main.c": '#include <stdio.h>\nint work(int);\nint lib(int);\nint main(void){int s=0;'
              'for(int i=0;i<1000;i++) s+=work(i)+lib(i);printf("%d\\n",s);return 0;}\n',
    "work.c": "int work(int n){int s=0;for(int i=0;i<n;i++) s+=i*i%7;return s;}\n",
    "lib.c": "int lib(int n){int s=1;for(int i=0;i<n%64;i++) s=s*3+i;return s;}\n",
}


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_relink_replaces_objects_in_response_files_and_archives(wrapper, env, tmp_path):
    d = write_project(str(tmp_path / "p"), SRC)
    for name in SRC:
        run([wrapper, "-O2", "-c", name], d, env)
    run(["llvm-ar-19", "rcs", "liblib.a", "lib.o"], d, env)
    with open(os.path.join(d, "objs.rsp"), "w") as f:
        f.write("work.o\n")
    run([wrapper, "main.o", "@objs.rsp", "liblib.a", "-o", "prog"], d, env)
    expected = run("./prog", d, env).stdout

    prog = Program(d, "prog", str(tmp_path / "scratch"))
    assert sorted(os.path.basename(t.source) for t in prog.tus) == ["lib.c", "main.c", "work.c"]
    assert next(t for t in prog.tus if t.source.endswith("lib.c")).archive == os.path.join(d, "liblib.a")
    base = prog.link_config({})
    # The baseline relink reproduces the user's link exactly.
    assert _sha(base) == _sha(os.path.join(d, "prog"))
    for which in ("work.c", "lib.c"):
        tu = next(t for t in prog.tus if t.source.endswith(which))
        cand = prog.link_config({tu.tu_id: Pipeline().with_opt_level("O1").with_knob("unroll-count", 2)})
        assert _sha(cand) != _sha(base), f"the candidate object of {which} did not reach the link"
        assert subprocess.run([cand], capture_output=True, text=True).stdout == expected
    # The user's archive and objects are untouched.
    assert run(["llvm-ar-19", "t", "liblib.a"], d, env).stdout.split() == ["lib.o"]
