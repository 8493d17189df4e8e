"""forkserver.py's protocol reader and rules, without a compiler."""

from __future__ import annotations

import os
import socket

from autopass_cc import forkserver


def test_both_reply_lines_in_one_read_are_two_lines():
    """A fast command (``-dumpmachine``) ends before the worker reads ``P``: the fork server's
    ``P<pid>`` and ``S<status>`` then arrive in one read.  Both lines must be seen, in order --
    read as one, the reply looked malformed and the command was run a second time."""
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"P1234\nS0\n")
        pending = bytearray()
        assert forkserver._line(b, pending) == b"P1234\n"
        assert forkserver._line(b, pending) == b"S0\n"
        a.sendall(b"S2")
        a.sendall(b"56\n")
        assert forkserver._line(b, pending) == b"S256\n"
        a.close()
        assert forkserver._line(b, pending) == b""


def test_environment_read_at_program_start_refuses_a_fork():
    assert forkserver.env_allows({"PATH": "/bin", "CFLAGS": "-O2", "LDFLAGS": "-s"})
    for name in ("LD_LIBRARY_PATH", "LD_PRELOAD", "GLIBC_TUNABLES", "MALLOC_ARENA_MAX"):
        assert not forkserver.env_allows({"PATH": "/bin", name: "x"})


def test_a_socket_per_executable_identity(tmp_path):
    exe = tmp_path / "cc"
    exe.write_bytes(b"\x7fELF")
    if not os.path.exists(forkserver.LIBRARY):
        assert forkserver.socket_path(str(tmp_path / "s.sock"), str(exe)) is None
        return
    first = forkserver.socket_path(str(tmp_path / "s.sock"), str(exe))
    assert first.startswith(str(tmp_path / "s.sock") + ".fs-")
    assert forkserver.socket_path(str(tmp_path / "s.sock"), str(exe)) == first
    (tmp_path / "new").write_bytes(b"\x7fELF")
    (tmp_path / "new").replace(exe)            # another file at the same path: another fork server
    assert forkserver.socket_path(str(tmp_path / "s.sock"), str(exe)) != first


def test_a_command_is_encoded_as_argc_then_nul_ended_arguments_and_environment():
    """The layout forkserver.c's request reader and the client's hand-back reader both parse."""
    from autopass_cc.forkserver import encode_command
    assert encode_command(["clang-19", "-c", "a b.c"], {"LANG": "C", "X": "1=2"}) == \
        b"3\0clang-19\0-c\0a b.c\0LANG=C\0X=1=2\0"
    assert encode_command(["cc", "\udcff"], {}) == b"2\0cc\0\xff\0"   # bytes as the file system gave them
