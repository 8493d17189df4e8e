"""Tests for autopass_cc.tuning.verify."""

import hashlib
import sys

import pytest

from autopass_cc.errors import AutopassError
from autopass_cc.tuning.measure import RunResult, run_command
from autopass_cc.tuning.verify import (
    BaselineFailed,
    NondeterministicProgram,
    Reference,
    Verdict,
    establish_reference,
    verify,
)

PY = sys.executable


def rr(stdout=b"", returncode=0, timed_out=False, wall_s=0.1, stderr=b""):
    return RunResult(returncode, stdout, stderr, wall_s, 0.05, timed_out)


OUT = b"alpha\nbeta\ngamma\n"


def ref():
    return establish_reference([rr(OUT), rr(OUT)])


# --------------------------------------------------------------------------
# establish_reference
# --------------------------------------------------------------------------


def test_reference_from_agreeing_runs():
    r = ref()
    assert isinstance(r, Reference)
    assert r.returncode == 0
    assert r.stdout == OUT
    assert r.stdout_sha256 == hashlib.sha256(OUT).hexdigest()
    assert r.check is None


def test_reference_from_real_runs(tmp_path):
    runs = [run_command("printf 'a\\nb\\n'", str(tmp_path), timeout_s=10) for _ in range(2)]
    r = establish_reference(runs)
    assert r.stdout == b"a\nb\n"


def test_nondeterministic_stdout_names_first_differing_line():
    with pytest.raises(NondeterministicProgram) as ei:
        establish_reference([rr(OUT), rr(OUT), rr(b"alpha\nbeta\nGAMMA\n")])
    msg = str(ei.value)
    assert "\n" not in msg
    assert "runs 1 and 3" in msg
    assert "line 3" in msg
    assert "'gamma'" in msg and "'GAMMA'" in msg
    assert isinstance(ei.value, AutopassError)


def test_nondeterministic_real_program(tmp_path):
    runs = [run_command(f"{PY} -c 'import os; print(os.getpid())'", str(tmp_path), 10) for _ in range(2)]
    with pytest.raises(NondeterministicProgram, match="line 1"):
        establish_reference(runs)


def test_nondeterministic_exit_status():
    with pytest.raises(NondeterministicProgram, match="exit status"):
        establish_reference([rr(OUT), rr(OUT, returncode=1)])


def test_nondeterministic_check_output():
    with pytest.raises(NondeterministicProgram, match="check command"):
        establish_reference([rr(OUT), rr(OUT)], check_outputs=[b"ok\n", b"bad\n"])


def test_failing_baseline_says_how_to_fix():
    with pytest.raises(BaselineFailed) as ei:
        establish_reference([rr(returncode=2, stderr=b"x\nerror: no input\n")] * 2)
    msg = str(ei.value)
    assert "exit status 2" in msg
    assert "autopass.toml" in msg and "`run`" in msg
    assert "error: no input" in msg
    assert "\n" not in msg


def test_timed_out_baseline():
    with pytest.raises(BaselineFailed, match=r"timed out after 30\.0 s.*autopass\.toml"):
        establish_reference([rr(OUT), rr(returncode=-9, timed_out=True, wall_s=30.0)])


def test_needs_two_runs():
    with pytest.raises(ValueError):
        establish_reference([rr(OUT)])


# --------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------


def test_verify_ok():
    assert verify(ref(), rr(OUT)) == Verdict(True, "")


def test_verify_signal():
    v = verify(ref(), rr(OUT, returncode=-11))
    assert v == Verdict(False, "exit status -11 (SIGSEGV), expected 0")


def test_verify_shell_reported_signal_and_plain_exit():
    assert verify(ref(), rr(returncode=139)).reason == "exit status 139 (128+11: SIGSEGV?), expected 0"
    assert verify(ref(), rr(returncode=1)).reason == "exit status 1, expected 0"


def test_verify_real_crash(tmp_path):
    res = run_command("kill -SEGV $$", str(tmp_path), timeout_s=10)
    assert verify(ref(), res).reason == "exit status -11 (SIGSEGV), expected 0"


def test_verify_timeout():
    v = verify(ref(), rr(returncode=-9, timed_out=True, wall_s=12.0))
    assert v == Verdict(False, "timed out after 12.0 s")


def test_verify_stdout_differs():
    v = verify(ref(), rr(b"alpha\nbeta\ngamma!\n"))
    assert not v.ok
    assert v.reason == "stdout differs from the reference at line 3: expected 'gamma' got 'gamma!'"


def test_verify_missing_and_extra_lines():
    assert verify(ref(), rr(b"alpha\n")).reason == (
        "stdout differs from the reference at line 2: expected 'beta' got end of output"
    )
    assert verify(ref(), rr(OUT + b"delta\n")).reason == (
        "stdout differs from the reference at line 4: expected end of output got 'delta'"
    )


def test_verify_trailing_newline_difference_is_visible():
    v = verify(ref(), rr(b"alpha\nbeta\ngamma"))
    assert v.reason == "stdout differs from the reference at line 3: expected 'gamma\\n' got 'gamma'"


def test_verify_long_lines_are_truncated_around_the_difference():
    exp = b"x" * 500 + b"A" + b"y" * 500 + b"\n"
    got = b"x" * 500 + b"B" + b"y" * 500 + b"\n"
    r = establish_reference([rr(exp), rr(exp)])
    v = verify(r, rr(got))
    assert not v.ok
    assert len(v.reason) < 260
    assert "A" in v.reason and "B" in v.reason
    assert "..." in v.reason


def test_verify_binary_output():
    r = establish_reference([rr(b"\xff\x00ok\n")] * 2)
    v = verify(r, rr(b"\xfe\x00ok\n"))
    assert v.reason == "stdout differs from the reference at line 1: expected '\\\\xff\\x00ok' got '\\\\xfe\\x00ok'"


def test_verify_check_output():
    r = establish_reference([rr(OUT), rr(OUT)], check_outputs=[b"ok\n", b"ok\n"])
    assert r.check == b"ok\n"
    assert verify(r, rr(OUT), check_output=b"ok\n").ok
    v = verify(r, rr(OUT), check_output=b"bad\n")
    assert v.reason == "check command output differs from the reference at line 1: expected 'ok' got 'bad'"
    with pytest.raises(ValueError):
        verify(r, rr(OUT))


def test_verify_order_timeout_before_status():
    # A timed-out run also has a signal status; the timeout is the reason.
    assert verify(ref(), rr(returncode=-9, timed_out=True, wall_s=3.0)).reason == "timed out after 3.0 s"
