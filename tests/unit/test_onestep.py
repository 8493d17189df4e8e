"""Tests for autopass_cc.onestep.split: which one-step builds are split, and how."""

from __future__ import annotations

import os

from autopass_cc.onestep import split


def _split(args, tmp_path, cwd=None):
    return split(args, cwd or str(tmp_path), str(tmp_path))


def test_each_source_becomes_a_compile_and_the_link_takes_its_object_in_place(tmp_path):
    plan = _split(["-O2", "-I", "inc", "-DX=1", "-pthread", "-o", "prog", "a.c", "lib.a", "sub/b.c", "-L", "lib",
                   "-lm", "-Wl,--as-needed", "-s"], tmp_path)
    assert plan is not None and len(plan.compiles) == 2
    a, b = plan.compiles
    assert a[:6] == ["-O2", "-I", "inc", "-DX=1", "-pthread", "-c"] and a[6] == "a.c"
    assert b[6] == "sub/b.c" and os.path.basename(b[-1]) == "1-b.o"
    # no link-only option reaches a compile
    assert not any(x.startswith(("-L", "-l", "-Wl,")) or x in ("lib", "-s", "lib.a") for x in a + b)
    objs = [c[-1] for c in plan.compiles]
    assert plan.link_args == ["-O2", "-I", "inc", "-DX=1", "-pthread", "-o", "prog", objs[0], "lib.a", objs[1],
                              "-L", "lib", "-lm", "-Wl,--as-needed", "-s"]
    assert all(o.startswith(str(tmp_path / ".autopass" / "objects")) for o in objs)


def test_the_same_link_gets_the_same_objects_and_another_link_others(tmp_path):
    one = _split(["-o", "p", "a.c"], tmp_path)
    assert _split(["-o", "p", "a.c"], tmp_path).compiles == one.compiles
    assert _split(["-o", "q", "a.c"], tmp_path).compiles != one.compiles


def test_anything_unusual_is_left_to_clang(tmp_path):
    for args in (["-x", "c", "-o", "p", "a.c"], ["-MD", "-o", "p", "a.c"], ["@args.rsp", "-o", "p", "a.c"],
                 ["-v", "-o", "p", "a.c"], ["-o", "p", "a.c", "start.S"], ["-o", "p", "-"],
                 ["--unknown-option", "-o", "p", "a.c"], ["-flto", "-o", "p", "a.c"],
                 ["-save-temps", "-o", "p", "a.c"], ["-o", "p", "x.o", "y.o"], ["-o", "conftest", "conftest.c"]):
        assert _split(args, tmp_path) is None, args
    assert _split(["-o", "p", "a.c"], tmp_path, cwd=str(tmp_path / "CMakeFiles" / "CMakeScratch" / "TryCompile-x")) is None
    # Meson's checks (seen on pixman): in the build directory's meson-private/, or run from it.
    assert _split(["-o", "p", "meson-private/tmpab12/testfile.c"], tmp_path) is None
    assert _split(["-o", "p", "testfile.c"], tmp_path, cwd=str(tmp_path / "build" / "meson-private" / "tmpab12")) is None
    assert _split(["-o", "p", "meson-privately.c"], tmp_path) is not None


def test_a_shared_library_in_one_step(tmp_path):
    plan = _split(["-shared", "-fPIC", "-O2", "-o", "libx.so", "x.c", "y.c"], tmp_path)
    assert [c[:3] for c in plan.compiles] == [["-fPIC", "-O2", "-c"]] * 2
    assert plan.link_args[:4] == ["-shared", "-fPIC", "-O2", "-o"]
