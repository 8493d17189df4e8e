"""Checking that a tuned build still produces the program's reference output.

A tuned pipeline is only acceptable if the program behaves exactly as the
baseline build did.  The reference is the exit status and standard output
of the baseline build's run command (standard error is ignored: programs
commonly print timings or diagnostics there).  Optionally the reference also
holds the standard output of a separate *check* command (e.g. one that
validates files written by the run), which must then match as well.

Because a reference is only meaningful if the program is deterministic, it
is built from at least two baseline runs that must agree exactly.
"""

from __future__ import annotations

import hashlib
import signal
from dataclasses import dataclass
from typing import Optional, Sequence

from autopass_cc.errors import SessionError
from autopass_cc.tuning.measure import RunResult

__all__ = [
    "Reference",
    "NondeterministicProgram",
    "BaselineFailed",
    "establish_reference",
    "Verdict",
    "verify",
]



class NondeterministicProgram(SessionError):
    """The baseline runs disagree (stdout, exit status or check output), so
    outputs of tuned builds cannot be verified against them.
    ``str(err)`` is a one-line message naming the first difference."""


class BaselineFailed(SessionError):
    """The untuned baseline run itself fails (non-zero exit or timeout).
    ``str(err)`` is a one-line message saying to check the ``run`` command."""


@dataclass(frozen=True)
class Reference:
    """Expected behaviour of the program, taken from baseline runs.

    Attributes:
        returncode: expected exit status (always 0 for references built by
            :func:`establish_reference`).
        stdout: expected standard output (bytes).
        stdout_sha256: hex SHA-256 of ``stdout``.
        check: expected standard output of the check command (bytes), or
            ``None`` when no check command is configured.
    """

    returncode: int
    stdout: bytes
    stdout_sha256: str
    check: Optional[bytes] = None


@dataclass(frozen=True)
class Verdict:
    """Result of :func:`verify`: ``ok`` and, when not ok, a one-line ``reason``."""

    ok: bool
    reason: str = ""


_MAX_SHOWN = 80


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def describe_status(returncode: int) -> str:
    """Human-readable exit status, e.g. ``"exit status -11 (SIGSEGV)"``.

    Negative codes are signals that killed the shell; codes 129..192 are
    how ``/bin/sh`` reports a command it ran being killed by a signal.
    """
    if returncode < 0:
        return f"exit status {returncode} ({_signal_name(-returncode)})"
    if 128 < returncode <= 128 + 64:
        return f"exit status {returncode} (128+{returncode - 128}: {_signal_name(returncode - 128)}?)"
    return f"exit status {returncode}"


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="backslashreplace")


def _show(text: str, start: int = 0) -> str:
    """Quoted, escaped rendering of ``text[start:]`` cut to ~80 characters."""
    head = "..." if start > 0 else ""
    body = text[start:]
    tail = ""
    if len(body) > _MAX_SHOWN:
        body, tail = body[:_MAX_SHOWN], "..."
    return repr(head + body + tail)


def first_difference(
    expected: bytes, got: bytes, *, expected_label: str = "expected", got_label: str = "got"
) -> Optional[str]:
    """Describe where ``got`` first differs from ``expected``, or ``None``.

    Returns a fragment like ``"line 3: expected 'abc' got 'abd'"`` (1-based
    line numbers).  Lines longer than ~80 characters are shown as a window
    starting shortly before the first differing character; a difference in
    line endings only is shown with the line endings.
    """
    if expected == got:
        return None
    exp_lines = expected.splitlines(keepends=True)
    got_lines = got.splitlines(keepends=True)
    for i, (e, g) in enumerate(zip(exp_lines, got_lines)):
        if e == g:
            continue
        e_text, g_text = _decode(e.rstrip(b"\r\n")), _decode(g.rstrip(b"\r\n"))
        if e_text == g_text:  # only the line ending differs: show it
            e_text, g_text = _decode(e), _decode(g)
        col = 0
        while col < min(len(e_text), len(g_text)) and e_text[col] == g_text[col]:
            col += 1
        start = col - 20 if col > _MAX_SHOWN - 20 else 0
        return (
            f"line {i + 1}: {expected_label} {_show(e_text, start)} "
            f"{got_label} {_show(g_text, start)}"
        )
    n = min(len(exp_lines), len(got_lines))
    if len(got_lines) < len(exp_lines):
        shown = _show(_decode(exp_lines[n].rstrip(b"\r\n")))
        return f"line {n + 1}: {expected_label} {shown} {got_label} end of output"
    shown = _show(_decode(got_lines[n].rstrip(b"\r\n")))
    return f"line {n + 1}: {expected_label} end of output {got_label} {shown}"


_FIX_RUN = "check the `run` command in autopass.toml"


def establish_reference(
    results: Sequence[RunResult],
    *,
    check_outputs: Optional[Sequence[bytes]] = None,
) -> Reference:
    """Build the :class:`Reference` from baseline runs of the untuned build.

    Args:
        results: at least 2 :class:`RunResult` of the baseline build.
        check_outputs: optional stdout of the check command after each
            baseline run (same length as ``results``); they must all agree.

    Returns:
        The reference (exit status 0, the common stdout and its SHA-256).

    Raises:
        ValueError: fewer than 2 results, or ``check_outputs`` of another
            length.
        BaselineFailed: a baseline run timed out, or all baseline runs
            exited with the same non-zero status; the message gives the
            status and says to check the ``run`` command in autopass.toml.
        NondeterministicProgram: stdout, exit status or check output differ
            between baseline runs; the message names the first differing
            line.
    """
    if len(results) < 2:
        raise ValueError(f"need at least 2 baseline runs to establish a reference, got {len(results)}")
    if check_outputs is not None and len(check_outputs) != len(results):
        raise ValueError(
            f"check_outputs has {len(check_outputs)} entries for {len(results)} baseline runs"
        )
    for k, res in enumerate(results, start=1):
        if res.timed_out:
            raise BaselineFailed(
                f"the run command timed out after {res.wall_s:.1f} s on the untuned baseline "
                f"build (baseline run {k}); {_FIX_RUN} or raise its timeout"
            )
    first = results[0]
    for k, res in enumerate(results[1:], start=2):
        if res.returncode != first.returncode:
            raise NondeterministicProgram(
                f"the program's exit status is not deterministic: baseline run 1 ended with "
                f"{describe_status(first.returncode)}, run {k} with "
                f"{describe_status(res.returncode)}; {_FIX_RUN}"
            )
    if first.returncode != 0:
        err = first.stderr.strip().splitlines()
        hint = f" (last stderr line: {_show(_decode(err[-1]))})" if err else ""
        raise BaselineFailed(
            f"the run command fails on the untuned baseline build: "
            f"{describe_status(first.returncode)}{hint}; "
            f"{_FIX_RUN}: it must exit with status 0"
        )
    for k, res in enumerate(results[1:], start=2):
        diff = first_difference(
            first.stdout, res.stdout, expected_label="run 1 printed", got_label=f"run {k} printed"
        )
        if diff is not None:
            raise NondeterministicProgram(
                f"the program's stdout is not deterministic: baseline runs 1 and {k} differ at "
                f"{diff}; "
                "autopass verifies tuned builds by comparing stdout, so make it reproducible "
                "(e.g. print timings to stderr)"
            )
    if check_outputs is not None:
        for k, out in enumerate(check_outputs[1:], start=2):
            diff = first_difference(
                check_outputs[0], out, expected_label="after run 1", got_label=f"after run {k}"
            )
            if diff is not None:
                raise NondeterministicProgram(
                    f"the check command's output is not deterministic: after baseline runs 1 and {k} "
                    f"it differs at {diff}"
                )
    return Reference(
        returncode=first.returncode,
        stdout=first.stdout,
        stdout_sha256=hashlib.sha256(first.stdout).hexdigest(),
        check=None if check_outputs is None else bytes(check_outputs[0]),
    )


def verify(
    reference: Reference,
    result: RunResult,
    *,
    check_output: Optional[bytes] = None,
) -> Verdict:
    """Compare one run of a tuned build with the reference.

    Checks, in order: timeout, exit status, stdout, and (when the reference
    has one) the check command's output.

    Args:
        reference: from :func:`establish_reference`.
        result: the run to judge.
        check_output: stdout of the check command after this run; required
            when ``reference.check`` is not ``None``.

    Returns:
        ``Verdict(True, "")`` or ``Verdict(False, reason)`` with a one-line
        reason such as ``"exit status -11 (SIGSEGV), expected 0"``,
        ``"timed out after 12.0 s"`` or ``"stdout differs from the reference
        at line 3: expected 'a' got 'b'"``.

    Raises:
        ValueError: the reference has a check output but ``check_output``
            was not given.
    """
    if reference.check is not None and check_output is None:
        raise ValueError("the reference includes a check command output; pass check_output")
    if result.timed_out:
        return Verdict(False, f"timed out after {result.wall_s:.1f} s")
    if result.returncode != reference.returncode:
        return Verdict(
            False, f"{describe_status(result.returncode)}, expected {reference.returncode}"
        )
    if hashlib.sha256(result.stdout).hexdigest() != reference.stdout_sha256:
        diff = first_difference(reference.stdout, result.stdout)
        if diff is None:  # pragma: no cover - only if reference.stdout was tampered with
            diff = "(content hash mismatch)"
        return Verdict(False, f"stdout differs from the reference at {diff}")
    if reference.check is not None:
        diff = first_difference(reference.check, check_output)
        if diff is not None:
            return Verdict(False, f"check command output differs from the reference at {diff}")
    return Verdict(True, "")
