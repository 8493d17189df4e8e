"""The compile client and server (autopass_cc/client.c, server.py) with real clang-19: a call the
server serves behaves exactly as the standalone wrapper and plain clang (objects, depfiles,
diagnostics, exit codes, stdin, signals), Ctrl-C reaches the compiler, and every way the server
can be missing or unusable falls back to the standalone wrapper with the same result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from autopass_cc import server

SCRIPTS = Path(sysconfig.get_path("scripts"))
AP_CC = str(SCRIPTS / "autopass-cc")
CLANG = shutil.which("clang-19")


def _is_client(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(CLANG is None, reason="clang-19 not installed"),
    pytest.mark.skipif(not _is_client(AP_CC), reason="the compile client is not installed (./install.sh builds it)"),
]


@pytest.fixture
def srv(tmp_path):
    """A private socket directory (so each test has its own server), stopped afterwards."""
    d = tmp_path / "srv"
    yield d
    server.stop(str(d))


@pytest.fixture
def env(tmp_path, srv):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPASS_") and k not in ("MAKEFLAGS", "MFLAGS")}
    e.update(AUTOPASS_CACHE_DIR=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "xdg"), LC_ALL="C",
             AUTOPASS_SERVER_DIR=str(srv), AUTOPASS_SERVER_IDLE="60")
    return e


@pytest.fixture
def work(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "x.c").write_text('#include <stdio.h>\n#include "x.h"\nint f(int a) { return a * K; }\n'
                           'void hello(void) { puts("hi"); }\n')
    (d / "x.h").write_text("#define K 7\n")
    (d / "err.c").write_text("int f(int x) { return x + ; }\n")
    (d / "warn.c").write_text("int g(void) { }\n")
    old = time.time_ns() - 10 ** 10
    for p in d.iterdir():
        os.utime(p, ns=(old, old))
    time.sleep(0.05)
    return d


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a detached server's parent may be an init
    that does not reap, as in some containers)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def run(cmd, cwd, env, **kw):
    return subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env, capture_output=True, timeout=120, **kw)


def served(env, cwd) -> int:
    r = run([AP_CC, "stats", "--json"], cwd, env)
    assert r.returncode == 0, r.stderr
    import json
    return json.loads(r.stdout)["served_by_server"]


def start(env, cwd, srv) -> int:
    """Make a first call (which starts the server) and wait for it; returns its pid."""
    run([AP_CC, "--version"], cwd, env)
    for _ in range(300):
        found = server.running(str(srv))
        if found and os.path.exists(found[0]["socket"]):
            return found[0]["pid"]
        time.sleep(0.05)
    raise AssertionError(f"no compile server started in {srv}")


def test_served_compiles_match_clang(work, env, srv):
    pid = start(env, work, srv)
    args = ["-O2", "-MD", "-MF", "x.d", "-c", "x.c", "-o", "x.o"]
    assert run([CLANG] + args, work, env).returncode == 0
    want = ((work / "x.o").read_bytes(), (work / "x.d").read_bytes())
    for _ in range(2):   # a miss, then an object-cache hit
        (work / "x.o").unlink()
        (work / "x.d").unlink()
        r = run([AP_CC] + args, work, env)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
        assert ((work / "x.o").read_bytes(), (work / "x.d").read_bytes()) == want
    assert served(env, work) == 2   # the two compiles (the first call, --version, started the server)
    assert server.running(str(srv))[0]["pid"] == pid


def test_served_diagnostics_exit_codes_stdin_and_preprocessing(work, env, srv):
    start(env, work, srv)
    for args in (["-c", "err.c", "-o", "err.o"], ["-Wall", "-c", "warn.c", "-o", "warn.o"], ["-E", "x.c"],
                 ["-c", "missing.c"], ["--no-such-flag"]):
        want = run([CLANG] + args, work, env)
        got = run([AP_CC] + args, work, env)
        assert (got.returncode, got.stdout, got.stderr.replace(b"clang-19", b"X")) == \
            (want.returncode, want.stdout, want.stderr.replace(b"clang-19", b"X")), args
    # standard input is the client's own (passed to the server with the other two streams)
    src = b"int from_stdin(void) { return 42; }\n"
    r = run([AP_CC, "-x", "c", "-c", "-", "-o", "s.o"], work, env, input=src)
    assert r.returncode == 0, r.stderr
    nm = subprocess.run(["llvm-nm-19", str(work / "s.o")], capture_output=True, text=True).stdout
    assert "from_stdin" in nm
    assert served(env, work) == 6


def test_signal_status_is_passed_on(work, env, srv, tmp_path):
    fake = tmp_path / "clang"
    fake.write_text("#!/bin/sh\nkill -SEGV $$\n")
    fake.chmod(0o755)
    start(env, work, srv)
    env = dict(env, AUTOPASS_CC=str(fake))
    served_rc = run([AP_CC, "--version"], work, env).returncode
    standalone_rc = run([AP_CC, "--version"], work, dict(env, AUTOPASS_SERVER="0")).returncode
    assert served_rc == standalone_rc == -signal.SIGSEGV
    assert served(env, work) == 1


def test_pass_through_compiler_is_the_process_the_build_started(work, env, srv, tmp_path):
    """A served pass-through hands the command back (protocol X): the client exec-s the compiler,
    so the compiler has the client's pid, environment (plus the nesting counter) and signal
    dispositions (SIGINT ignored by the build stays ignored), as with the standalone wrapper."""
    fake = tmp_path / "clang"
    out = tmp_path / "seen"
    fake.write_text(f"#!/bin/sh\necho $$ $AUTOPASS_CC_DEPTH $MARK > {out}\n"
                    f"grep SigIgn /proc/$$/status >> {out}\nexec {CLANG} \"$@\"\n")
    fake.chmod(0o755)
    start(env, work, srv)
    env = dict(env, AUTOPASS_CC=str(fake), MARK="m a r k")
    for ignore in (False, True):
        pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore else None
        p = subprocess.Popen([AP_CC, "-E", "-x", "c", "-", "-o", "-"], cwd=work, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=pre)
        got, err = p.communicate(b"int x = __LINE__;\n", timeout=60)
        assert (p.returncode, err) == (0, b"")
        assert b"int x = 1;" in got
        first, ign = out.read_text().replace("SigIgn:", "").split("\n")[:2]
        assert first.split(maxsplit=2) == [str(p.pid), "1", "m a r k"]
        assert bool(int(ign.strip(), 16) & (1 << (signal.SIGINT - 1))) == ignore
    assert served(env, work) == 2


@pytest.mark.parametrize("magic", [b"APC1", b"APC2"])
def test_protocol_versions(work, env, srv, magic):
    """The request as client.c sends it, by hand: a protocol-1 client (an older install's) gets
    its pass-through run by the worker and a status (S); a protocol-2 client gets the command
    back (X) to exec itself."""
    import array
    import socket
    start(env, work, srv)
    sock = server.running(str(srv))[0]["socket"]
    env = dict(env, MARK="x", AUTOPASS_FORK_SERVER="0")  # (else a fork server may run it: S, no X)
    argv = [AP_CC, "clang-19", "-E", "-x", "c", os.devnull]
    root, cwd = os.stat("/"), os.stat(work)
    fields = [str(work), "18", str(root.st_dev), str(root.st_ino), str(cwd.st_dev), str(cwd.st_ino),
              str(len(argv))] + argv + [f"{k}={v}" for k, v in env.items()]
    payload = b"".join(os.fsencode(f) + b"\0" for f in fields)
    out_r, out_w = os.pipe()
    with open(os.devnull, "rb") as null, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(sock)
        fds = array.array("i", [null.fileno(), out_w, out_w])
        c.sendmsg([magic + len(payload).to_bytes(4, "little"), payload],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
        os.close(out_w)
        reply = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            reply += b
    with os.fdopen(out_r, "rb") as f:
        printed = f.read()
    head, _, rest = reply.partition(b"\n")
    assert head.startswith(b"P")
    if magic == b"APC1":
        assert rest == b"S0\n"
        assert b"# 1 \"/dev/null\"" in printed   # clang-19 ran in the worker, on our stdout
    else:
        length, _, body = rest.partition(b"\n")
        assert length.startswith(b"X") and int(length[1:]) == len(body)
        items = body.split(b"\0")[:-1]
        n = int(items[0])
        assert os.path.realpath(os.fsdecode(items[1])) == os.path.realpath(CLANG)
        assert items[2:1 + n] == [b"-E", b"-x", b"c", os.devnull.encode()]
        assert b"MARK=x" in items[1 + n:] and b"AUTOPASS_CC_DEPTH=1" in items[1 + n:]
        assert printed == b""                        # nothing ran: the client execs it


def test_ctrl_c_reaches_the_compiler(work, env, srv, tmp_path):
    fake = tmp_path / "clang"
    pidfile = tmp_path / "compiler.pid"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    fake.chmod(0o755)
    start(env, work, srv)
    env = dict(env, AUTOPASS_CC=str(fake))
    p = subprocess.Popen([AP_CC, "--version"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    compiler = int(pidfile.read_text())
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == -signal.SIGINT
    assert wait_gone(compiler), "the compiler survived Ctrl-C on the client"
    assert served(env, work) == 1


def test_changed_code_starts_a_fresh_server(work, env, srv):
    pid = start(env, work, srv)
    mod = Path(server.__file__)
    st = mod.stat()
    try:
        # newer than every source file the server watches (it compares the newest of them)
        os.utime(mod, ns=(st.st_atime_ns, time.time_ns() + 10 ** 10))
        r = run([AP_CC, "-c", "x.c", "-o", "x.o"], work, env)   # the old server serves it, then stops
        assert r.returncode == 0 and (work / "x.o").exists()
        assert wait_gone(pid), "the server with old code kept running"
        new = start(env, work, srv)
        assert new != pid
    finally:
        os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns))
    server.stop(str(srv))


@pytest.mark.parametrize("how", ["off", "not-a-directory", "shared-directory", "idle-exit", "killed"])
def test_no_usable_server_means_standalone(work, env, srv, how):
    want = run([CLANG, "-O2", "-c", "x.c", "-o", "want.o"], work, env)
    assert want.returncode == 0
    if how == "off":
        env["AUTOPASS_SERVER"] = "0"
    elif how == "not-a-directory":
        srv.write_text("")
    elif how == "shared-directory":
        srv.mkdir(mode=0o755)
        srv.chmod(0o755)
    elif how == "idle-exit":
        env["AUTOPASS_SERVER_IDLE"] = "0.5"
        pid = start(env, work, srv)
        for _ in range(100):
            if not server.running(str(srv)):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"server {pid} did not stop when idle")
        assert not list(srv.glob("*.sock"))
        env["AUTOPASS_SERVER"] = "0"   # do not start another one
    elif how == "killed":
        pid = start(env, work, srv)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    r = run([AP_CC, "-O2", "-c", "x.c", "-o", "x.o"], work, env)
    assert (r.returncode, r.stderr) == (0, b"")
    assert (work / "x.o").read_bytes() == (work / "want.o").read_bytes()
    if how in ("off", "not-a-directory", "shared-directory", "idle-exit"):
        assert served(env, work) == 0
        assert not server.running(str(srv))
    if how == "shared-directory":
        status = run([AP_CC, "server", "status"], work, env).stdout.decode()
        assert "not a private directory" in status and f"chmod 700 {srv}" in status, status


def test_server_status_and_stop(work, env, srv):
    pid = start(env, work, srv)
    out = run([AP_CC, "server", "status"], work, env)
    assert out.returncode == 0 and f"pid {pid}" in out.stdout.decode()
    out = run([AP_CC, "server", "stop"], work, env)
    assert out.returncode == 0 and "stopped 1" in out.stdout.decode()
    assert not server.running(str(srv))
    assert not list(srv.glob("*.sock"))


def test_make_j8_through_one_server(tmp_path, env, srv):
    """Eight concurrent calls on one fresh cache and one server: every object as clang builds it."""
    d = tmp_path / "many"
    d.mkdir()
    names = [f"u{i}" for i in range(16)]
    for n in names:
        (d / f"{n}.c").write_text(f"int {n}(int x) {{ int s = 0; for (int i = 0; i < x; i++) s += i * {len(n)}; return s; }}\n")
    (d / "main.c").write_text("".join(f"int {n}(int);\n" for n in names) +
                              "int main(void) { return (" + " + ".join(f"{n}(3)" for n in names) + ") & 1; }\n")
    (d / "Makefile").write_text("OBJS = main.o " + " ".join(f"{n}.o" for n in names) +
                                "\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n")
    start(env, d, srv)
    r = run(["make", "-j8", f"CC={AP_CC}"], d, env)
    assert r.returncode == 0, r.stderr
    for n in names:
        want = subprocess.run([CLANG, "-O2", "-c", f"{n}.c", "-o", "/dev/stdout"], cwd=d, capture_output=True).stdout
        assert (d / f"{n}.o").read_bytes() == want
    assert served(env, d) >= 18
    assert run(["./prog"], d, env).returncode in (0, 1)


def test_background_save_stores_what_clang_wrote(work, env, srv):
    """A served compile is reported done before its object is stored: the build may rewrite the
    object at once (strip, objcopy, a move), and the cache must still hold clang's bytes."""
    start(env, work, srv)
    args = ["-O2", "-c", "x.c", "-o", "x.o"]
    for i in range(5):
        (work / "x.h").write_text(f"#define K {i + 10}\n")   # a new content key: a miss each round
        old = time.time_ns() - 10 ** 10
        os.utime(work / "x.h", ns=(old, old))
        time.sleep(0.03)
        assert run([AP_CC] + args, work, env).returncode == 0
        (work / "x.o").write_bytes(b"rewritten by the build")  # right after the client returned
        (work / "x.o").unlink()
        assert run([AP_CC] + args, work, env).returncode == 0    # waits for the save, then a hit
        want = subprocess.run([CLANG] + args[:-1] + ["/dev/stdout"], cwd=work, capture_output=True).stdout
        assert (work / "x.o").read_bytes() == want
    s = json.loads(run([AP_CC, "stats", "--json"], work, env).stdout)
    assert (s["object_misses"], s["object_hits"]) == (5, 5), s


def test_cache_removed_while_spares_hold_it_open(work, env, srv):
    """Spares open the server's cache ahead of their call (store.open_ahead).  `rm -rf` of the
    cache while they wait: the next call must use (and re-create) the new cache, not the deleted
    files its spare still has open."""
    start(env, work, srv)
    args = ["-O2", "-c", "x.c", "-o", "x.o"]
    assert run([AP_CC] + args, work, env).returncode == 0
    time.sleep(1.2)  # every spare has opened the cache by now
    shutil.rmtree(env["AUTOPASS_CACHE_DIR"])
    for _ in range(2):  # a miss into the new cache, then a hit from it
        (work / "x.o").unlink()
        assert run([AP_CC] + args, work, env).returncode == 0
    s = json.loads(run([AP_CC, "stats", "--json"], work, env).stdout)
    assert (s["object_misses"], s["object_hits"], s["served_by_server"]) == (1, 1, 2), s


def _spare_files(server_pid: int) -> list[set]:
    """The files each spare of the server holds open (readlink of /proc/<pid>/fd/*); not its
    fork servers (forkserver.py, the compiler run with --version)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != server_pid or fields[0] == "Z":
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if b"--version" in f.read().split(b"\0"):
                    continue
            files = set()
            for fd in os.listdir(f"/proc/{d}/fd"):
                try:
                    files.add(os.readlink(f"/proc/{d}/fd/{fd}"))
                except OSError:
                    pass
        except (OSError, IndexError, ValueError):
            continue
        out.append(files)
    return out


def test_spares_open_the_cache_the_calls_use(work, env, srv, tmp_path):
    """Spares open the server's cache ahead; once calls use another cache (another
    AUTOPASS_CACHE_DIR), the spares that follow open that one instead."""
    pid = start(env, work, srv)
    args = ["-O2", "-c", "x.c", "-o", "x.o"]
    assert run([AP_CC] + args, work, env).returncode == 0   # creates the server's own cache
    time.sleep(1.2)
    own = os.path.join(env["AUTOPASS_CACHE_DIR"], "cache.db")
    spares = _spare_files(pid)
    assert spares and all(own in f and os.path.join(env["AUTOPASS_CACHE_DIR"], "objects", "cache.db") in f
                          for f in spares), spares
    other = dict(env, AUTOPASS_CACHE_DIR=str(tmp_path / "other-cache"))
    for _ in range(2):  # the first creates it; its spare notes it for the next ones
        (work / "x.o").unlink()
        assert run([AP_CC] + args, work, other).returncode == 0
    time.sleep(1.2)
    spares = _spare_files(pid)
    want = os.path.join(other["AUTOPASS_CACHE_DIR"], "cache.db")
    assert spares and all(want in f and own not in f for f in spares), spares
    s = json.loads(run([AP_CC, "stats", "--json"], work, other).stdout)
    assert (s["object_misses"], s["object_hits"]) == (1, 1), s


def test_served_calls_take_the_callers_nice_value_and_limits(work, env, srv, tmp_path):
    """`nice make` and `ulimit` reach the compiler as they would without a server: the served
    process takes the client's nice value and resource limits (server._as_client)."""
    fake = tmp_path / "clang"
    fake.write_text("#!/bin/sh\necho \"$(cut -d' ' -f19 /proc/$$/stat) $(ulimit -n) $(ulimit -c)\"\n")
    fake.chmod(0o755)
    start(env, work, srv)
    env = dict(env, AUTOPASS_CC=str(fake))
    r = run(["nice", "-n", "7", "sh", "-c", f"ulimit -n 300; ulimit -c 0; exec {AP_CC} --version"], work, env)
    assert r.returncode == 0 and r.stdout.split() == [b"7", b"300", b"0"], (r.stdout, r.stderr)
    assert served(env, work) == 1
    # The next call, from a process with the defaults, gets them back (the niced call was served
    # in a process of its own, which ended with it).
    r = run([AP_CC, "--version"], work, env)
    assert r.stdout.split()[0] == str(os.getpriority(os.PRIO_PROCESS, 0)).encode(), r.stdout


def test_workers_serve_calls_one_after_another_each_in_its_own_context(work, env, srv, tmp_path):
    """A worker serves several calls in one process (server._serve_here): each call sees its
    own directory, environment, umask and streams, never the previous call's, and a
    pass-through's compiler runs as the worker's child with the call's exit status."""
    fake = tmp_path / "clang"
    fake.write_text('#!/bin/sh\necho "$PPID|${FOO-unset}|$(pwd)|$(umask)|$TMPDIR"\nexit 3\n')
    fake.chmod(0o755)
    server_pid = start(env, work, srv)
    env = dict(env, AUTOPASS_CC=str(fake))
    dirs = [tmp_path / f"d{i}" for i in range(2)]
    for d in dirs:
        d.mkdir()
    parents = []
    for i in range(6):
        d = dirs[i % 2]
        e = dict(env, FOO=f"call{i}", TMPDIR=str(d)) if i % 2 == 0 else env
        mask = "077" if i % 2 == 0 else "022"
        r = run(["sh", "-c", f"umask {mask}; exec {AP_CC} --version"], d, e)
        assert r.returncode == 3, r.stderr
        ppid, foo, cwd, umask, tmp = r.stdout.decode().strip().split("|")
        assert (foo, cwd, umask, tmp) == ((f"call{i}", str(d), "0077", str(d)) if i % 2 == 0
                                          else ("unset", str(d), "0022", env.get("TMPDIR", ""))), r.stdout
        parents.append(ppid)
    assert str(server_pid) not in parents  # (a process per call became the compiler: exec)
    assert len(set(parents)) < len(parents), "every call had a process of its own"
    assert served(env, work) == 6
    # an object-cache hit right after the miss in the same worker does not wait for that
    # worker's own background-store lock (it is released when the call ends)
    args = ["-O2", "-c", "x.c", "-o", "x.o"]
    env.pop("AUTOPASS_CC")
    for _ in range(4):
        t0 = time.monotonic()
        assert run([AP_CC] + args, work, env).returncode == 0
        assert time.monotonic() - t0 < 5.0, "a call waited for a lock its own worker held"


def test_an_old_server_leaves_the_new_ones_pid_file(work, env, srv, tmp_path):
    """A server that stops while a call is in flight lets a new server start (close_listener
    releases the lock); when the old one ends it must not remove the new one's pid file, or
    `server status` and `server stop` lose the new server."""
    fake = tmp_path / "clang"
    fake.write_text("#!/bin/sh\nsleep 2\n")
    fake.chmod(0o755)
    old = start(env, work, srv)
    slow = subprocess.Popen([AP_CC, "--version"], cwd=str(work), env=dict(env, AUTOPASS_CC=str(fake)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    os.kill(old, signal.SIGTERM)
    for _ in range(100):                      # the old server's socket goes; a new call starts another
        if not any(s["pid"] == old for s in server.running(str(srv))) or not os.path.exists(
                server.running(str(srv))[0]["socket"]):
            break
        time.sleep(0.05)
    new = start(env, work, srv)
    assert new != old
    assert slow.wait(30) == 0
    assert wait_gone(old)
    assert [s["pid"] for s in server.running(str(srv))] == [new]
    server.stop(str(srv))
    assert wait_gone(new)


def test_background_priority_is_lowered_only_where_it_can_come_back(monkeypatch):
    """A worker stores a call's results at nice 19 only when it may return to its own priority
    afterwards (root, or RLIMIT_NICE): without that privilege it keeps its priority, since it
    serves the next call at it."""
    import resource
    calls = []
    monkeypatch.setattr(os, "getpriority", lambda which, who: 0)
    monkeypatch.setattr(os, "setpriority", lambda which, who, prio: calls.append(prio))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (0, 0))   # the usual RLIMIT_NICE
    assert server._lower_priority() is None and calls == []
    monkeypatch.setattr(resource, "getrlimit", lambda which: (20, 20))  # may go back to nice 0
    assert server._lower_priority() == 0 and calls == [19]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert server._lower_priority() == 0 and calls == [19, 19]


def test_the_command_on_path_is_the_client_itself():
    """What a build that says CC=autopass-cc runs is the installed client, not a script in front of
    it: a version manager's shim (pyenv's runs `pyenv exec`, ~50 ms per call measured) would
    cost more than the compile server saves.  install.sh turns pyenv's two shims into links."""
    # (`python3` through pyenv's shim runs us with the scripts directory put first on PATH by
    # `pyenv exec`; a build started from the user's shell has no such entry: look past it.)
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and os.path.realpath(d) != os.path.realpath(SCRIPTS))
    for name in ("autopass-cc", "autopass-c++"):
        found = shutil.which(name, path=path)
        if found is not None:
            assert os.path.realpath(found) == os.path.realpath(SCRIPTS / name), \
                f"{name} on PATH is {found}, not the client {SCRIPTS / name}"


def _logging_clang(tmp_path, log) -> Path:
    """An executable (ELF, as the early start wants: forkserver.is_elf) named clang-19
    that appends its arguments to ``log`` when they compile (-c), then exec-s clang-19."""
    src = tmp_path / "logcc.c"
    src.write_text(
        '#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n'
        'int main(int argc, char **argv) {\n'
        '  for (int i = 1; i < argc; i++) if (!strcmp(argv[i], "-c")) {\n'
        f'    FILE *f = fopen("{log}", "a");\n'
        '    for (int j = 1; j < argc; j++) fprintf(f, "%s ", argv[j]);\n'
        '    fputc(10, f); fclose(f); break; }\n'
        f'  argv[0] = "{CLANG}"; execv("{CLANG}", argv); return 127; }}\n')
    cc = tmp_path / "bin" / "clang-19"
    cc.parent.mkdir()
    subprocess.run([CLANG, "-O1", str(src), "-o", str(cc)], check=True)
    return cc


def test_compile_started_early_is_cancelled_on_a_hit(work, env, srv, tmp_path):
    """After a miss, a worker starts clang before its lookups finish (wrapper._start_early); when
    the lookup then hits, that compile is ended and the object comes from the cache: the same bytes,
    no temporary file of clang's left beside the output or in the cache, the hit counted.  A
    compiler in front of clang-19 logs each compile it starts."""
    log = tmp_path / "starts.log"
    cc = _logging_clang(tmp_path, log)
    start(env, work, srv)
    args = ["-O2", "-c", "x.c", "-o", "x.o"]
    assert run([AP_CC, cc] + args, work, env).returncode == 0     # a miss: the worker starts early next time
    first = (work / "x.o").read_bytes()
    before = set(os.listdir(work))
    for _ in range(4):  # (a call may reach a worker that has not seen the miss: it starts early too)
        (work / "x.o").unlink()
        r = run([AP_CC, cc] + args, work, env)
        assert r.returncode == 0 and not r.stderr, r.stderr
        assert (work / "x.o").read_bytes() == first
    assert set(os.listdir(work)) == before
    s = json.loads(run([AP_CC, "stats", "--json"], work, env).stdout)
    assert (s["object_misses"], s["object_hits"]) == (1, 4), s
    starts = log.read_text().splitlines()
    assert len(starts) >= 2 and all("-dependency-dot" in line for line in starts), starts  # >= 1 started, cancelled
    leftovers = [f for f in os.listdir(os.path.join(env["AUTOPASS_CACHE_DIR"], "objects", "tmp"))
                 if f.endswith((".dot", ".hdr"))]
    assert leftovers == []


@pytest.mark.parametrize("front", ["driver children", "script"])
def test_no_early_start_where_a_cancel_may_not_end_the_compile(work, env, srv, tmp_path, front):
    """Never started before its lookups (one compile for a miss and two hits):
    * with -fno-integrated-cc1 (or an external assembler) clang's driver runs the compiler proper
      as a child that a SIGTERM to the driver does not end -- measured: the object still appeared;
    * a compiler that is a script may run clang as its child, which a cancel of the script would
      not end."""
    log = tmp_path / "starts.log"
    args = ["-O2", "-c", "x.c", "-o", "x.o"]
    if front == "driver children":
        cc = _logging_clang(tmp_path, log)
        args = ["-fno-integrated-cc1"] + args
    else:
        cc = tmp_path / "bin" / "clang-19"
        cc.parent.mkdir()
        cc.write_text(f'#!/bin/sh\ncase " $* " in *" -c "*) echo "$*" >> {log};; esac\n{CLANG} "$@"\n')
        cc.chmod(0o755)
    start(env, work, srv)
    for _ in range(3):
        assert run([AP_CC, cc] + args, work, env).returncode == 0
        (work / "x.o").unlink()
    s = json.loads(run([AP_CC, "stats", "--json"], work, env).stdout)
    assert (s["object_misses"], s["object_hits"]) == (1, 2), s
    assert len(log.read_text().splitlines()) == 1


# -- compiler fork servers (forkserver.c, forkserver.py) ----------------------------------------

from autopass_cc import forkserver  # noqa: E402

needs_library = pytest.mark.skipif(not os.path.exists(forkserver.LIBRARY),
                                   reason="the fork server library is not built (./install.sh builds it)")

#: A compiler in front of clang-19 (an ELF program, so it may have a fork server) that records
#: what its process is like when it compiles (-c; any call with $PROBE_LOG_ALL) to $PROBE_LOG,
#: one JSON object per line (``last``: its last argument), sleeps $PROBE_SLEEP seconds, then
#: exec-s clang-19.
PROBE = r'''
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
static void status_field(FILE *out, const char *name) {
  FILE *f = fopen("/proc/self/status", "r"); char line[256]; size_t n = strlen(name);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, name, n) && line[n] == ':') { line[strcspn(line, "\n")] = 0;
      fprintf(out, "\"%s\": \"%s\", ", name, line + n + 2); }
  if (f) fclose(f);
}
int main(int argc, char **argv, char **envp) {
  int compiles = 0;
  for (int i = 1; i < argc; i++) compiles |= !strcmp(argv[i], "-c");
  const char *log = getenv("PROBE_LOG");
  if ((compiles || getenv("PROBE_LOG_ALL")) && log) {
    char cwd[4096], exe[4096] = "", comm[64] = ""; ssize_t k;
    FILE *f = fopen(log, "a");
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    if ((k = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) exe[k] = 0;
    FILE *c = fopen("/proc/self/comm", "r"); if (c) { if (fgets(comm, sizeof comm, c)) comm[strcspn(comm, "\n")] = 0; fclose(c); }
    mode_t m = umask(0); umask(m);
    int fds = 0; DIR *d = opendir("/proc/self/fd"); struct dirent *e;
    while (d && (e = readdir(d))) fds += e->d_name[0] != '.';
    if (d) closedir(d);
    int nenv = 0; for (char **p = envp; *p; p++) nenv++;
    fprintf(f, "{\"pid\": %d, \"ppid\": %d, \"pgid\": %d, \"cwd\": \"%s\", \"exe\": \"%s\", \"comm\": \"%s\", "
               "\"umask\": %d, \"fds\": %d, \"nenv\": %d, \"mark\": \"%s\", \"isatty2\": %d, ",
            (int)getpid(), (int)getppid(), (int)getpgrp(), cwd, exe, comm, (int)m, fds - 1, nenv,
            getenv("PROBE_MARK") ? getenv("PROBE_MARK") : "", isatty(2));
    status_field(f, "SigBlk"); status_field(f, "SigIgn");
    fprintf(f, "\"argv0\": \"%s\", \"argc\": %d, \"name\": \"%s\", \"last\": \"%s\"}\n", argv[0], argc,
            program_invocation_name, argv[argc - 1]);
    fclose(f);
  }
  if (compiles && getenv("PROBE_SLEEP")) sleep(atoi(getenv("PROBE_SLEEP")));
  argv[0] = "CLANG"; execv("CLANG", argv); return 127;
}
'''


def _probe(tmp_path) -> Path:
    src = tmp_path / "probe.c"
    src.write_text(PROBE.replace("CLANG", CLANG))
    cc = tmp_path / "bin" / "clang-19"
    cc.parent.mkdir(exist_ok=True)
    subprocess.run([CLANG, "-O1", str(src), "-o", str(cc)], check=True)
    return cc


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _fork_servers(server_pid: int) -> list[int]:
    """Pids of the fork servers the compile server ``server_pid`` started (children that are the
    compiler run with ``--version``, forkserver.start)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = _ppid(int(name))
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server_pid and b"--version" in cmd and alive(int(name)):
            out.append(int(name))
    return out


def _fork_server_up(env, work, srv, cc, server_pid) -> int:
    """Compile misses through ``cc`` until its fork server is up; returns its pid."""
    for i in range(100):
        assert run([AP_CC, cc, f"-DWARMUP={i}", "-c", "x.c", "-o", "w.o"], work, env).returncode == 0
        if list(srv.glob("*.fs-*")) and _fork_servers(server_pid):
            return _fork_servers(server_pid)[0]
        time.sleep(0.05)
    raise AssertionError("no fork server came up")


def _probed(tmp_path, env, work, srv):
    """The probe compiler logging to a fresh log, a compile server and the probe's fork server up:
    ``(probe, log, env with PROBE_LOG, server pid, fork server pid)``."""
    cc = _probe(tmp_path)
    log = tmp_path / "probe.log"
    env = dict(env, PROBE_LOG=str(log))
    pid = start(env, work, srv)
    fs = _fork_server_up(env, work, srv, cc, pid)
    log.write_text("")
    return cc, log, env, pid, fs


def _wait_logged(log: Path) -> None:
    for _ in range(300):
        if log.read_text():
            return
        time.sleep(0.02)


def _records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@needs_library
def test_a_forked_compile_sees_what_an_exec_ed_one_sees(work, env, srv, tmp_path):
    """Once a fork server of the compiler is up, a cache miss is compiled by a fork of it: the
    same object bytes and depfile as clang-19's own, and the compiler's process sees exactly what
    it sees when exec-ed (AUTOPASS_FORK_SERVER=0) -- working directory, executable, command name,
    argv[0] and glibc's program_invocation_name, umask, open descriptors, environment, blocked
    and ignored signals, stderr not a terminal -- and is in the worker's process group (the
    client's signals reach it)."""
    cc, log, env, pid, fs = _probed(tmp_path, dict(env, PROBE_MARK="a b'c"), work, srv)
    args = ["-O2", "-MD", "-MF", "x.d", "-c", "x.c", "-o", "x.o"]
    assert run([CLANG] + args, work, env).returncode == 0
    want = ((work / "x.o").read_bytes(), (work / "x.d").read_bytes())
    umask027 = lambda: os.umask(0o027)  # noqa: E731
    for i, fork in enumerate(("1", "0")):
        r = run([AP_CC, cc, f"-DMISS={i}"] + args, work, dict(env, AUTOPASS_FORK_SERVER=fork), preexec_fn=umask027)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    forked, execed = _records(log)[-2:]
    assert forked["ppid"] == fs and execed["ppid"] != fs
    # Both in the process group of a worker of the compile server (its leader is the server's child).
    assert forked["pgid"] != os.getpgid(fs)
    assert _ppid(forked["pgid"]) == pid and _ppid(execed["pgid"]) == pid
    same = ("cwd", "exe", "comm", "argv0", "name", "argc", "umask", "fds", "nenv", "mark", "isatty2", "SigBlk", "SigIgn")
    assert {k: forked[k] for k in same} == {k: execed[k] for k in same}
    assert forked["umask"] == 0o027 and forked["mark"] == "a b'c" and forked["comm"] == "clang-19"
    # The bytes: a forked compile of the user's command gives clang-19's object and depfile.
    (work / "x.o").unlink()
    assert run([AP_CC, cc] + args, work, env).returncode == 0
    assert ((work / "x.o").read_bytes(), (work / "x.d").read_bytes()) == want
    assert _records(log)[-1]["ppid"] == fs
    s = json.loads(run([AP_CC, "stats", "--json"], work, env).stdout)
    assert s["compiles_forked"] >= 2, s
    # The fork server holds no descriptor it inherited (it was started during a call, whose
    # client connection the compile server held: that client would wait for its end of file).
    held = [os.readlink(f"/proc/{fs}/fd/{n}") for n in os.listdir(f"/proc/{fs}/fd")]
    assert sum(h.startswith("socket:") for h in held) == 1, held   # its own listener
    status = run([AP_CC, "server", "status"], work, env).stdout.decode()
    assert f"fork server pid {fs}  {os.path.realpath(cc)}" in status, status


@needs_library
def test_a_pass_through_runs_as_a_fork_too(work, env, srv, tmp_path):
    """A link, a preprocessing, a failing link: run by a fork of the fork server, with the
    call's streams, and the client ends as clang-19 would (output, diagnostics, exit code); a
    command with ``-`` (standard input) is exec-ed by the client as before."""
    cc, log, env, _, fs = _probed(tmp_path, env, work, srv)
    (work / "main.c").write_text("int f(int);\nint main(void) { return f(6) == 42 ? 0 : 1; }\n")
    (work / "lonely.c").write_text("int g(int);\nint main(void) { return g(1); }\n")
    for src in ("main", "lonely"):
        assert run([CLANG, "-c", f"{src}.c", "-o", f"{src}.o"], work, env).returncode == 0
    assert run([CLANG, "-c", "x.c", "-o", "x.o"], work, env).returncode == 0
    env = dict(env, PROBE_LOG_ALL="1")
    log.write_text("")
    calls = [(["x.o", "main.o", "-o", "prog{}"], None), (["-E", "x.c"], None),
             (["lonely.o", "-o", "lonely{}"], None), (["-E", "-x", "c", "-"], b"#define Q 5\nint q = Q;\n")]
    for args, stdin in calls:
        ours = run([AP_CC, cc] + [a.format(1) for a in args], work, env, input=stdin)
        theirs = run([CLANG] + [a.format(2) for a in args], work, env, input=stdin)
        assert (ours.returncode, ours.stdout, ours.stderr.replace(b"lonely1", b"lonely2")) == \
               (theirs.returncode, theirs.stdout, theirs.stderr), args
    assert (work / "prog1").read_bytes() == (work / "prog2").read_bytes()
    assert subprocess.run([str(work / "prog1")]).returncode == 0
    assert run([AP_CC, cc, "lonely.o", "-o", "lonely1"], work, env).returncode == 1
    # A command that ends at once: its P and S replies may arrive in one read, and it still runs
    # once (CI caught `-dumpmachine` printed twice: a reply misread, the command handed back).
    want = run([CLANG, "-dumpmachine"], work, env).stdout
    for _ in range(20):
        assert run([AP_CC, cc, "-dumpmachine"], work, env).stdout == want
    by_last = {r["last"]: r["ppid"] == fs for r in _records(log)}
    assert by_last == {"prog1": True, "x.c": True, "lonely1": True, "-": False, "-dumpmachine": True}, by_last


@needs_library
def test_an_environment_the_loader_reads_gets_an_exec_ed_compiler(work, env, srv, tmp_path):
    """LD_LIBRARY_PATH (or any LD_*, GLIBC_TUNABLES, MALLOC_*) is read when a program starts, and
    the fork server started without it: such a compile is exec-ed."""
    cc, log, env, _, fs = _probed(tmp_path, env, work, srv)
    for i, extra in enumerate(({"LD_LIBRARY_PATH": str(tmp_path)}, {"GLIBC_TUNABLES": "glibc.malloc.check=0"}, {})):
        assert run([AP_CC, cc, f"-DMISS={i}", "-c", "x.c", "-o", "x.o"], work, dict(env, **extra)).returncode == 0
    assert [r["ppid"] == fs for r in _records(log)] == [False, False, True]


@needs_library
def test_a_fork_server_killed_mid_compile_costs_nothing_but_time(work, env, srv, tmp_path):
    """The fork server dies (SIGKILL) while its compile runs: the worker waits for that compile to
    end, runs it again itself, and the build gets clang's object and a zero exit code."""
    cc, log, env, _, fs = _probed(tmp_path, env, work, srv)
    p = subprocess.Popen([AP_CC, cc, "-O2", "-c", "x.c", "-o", "x.o"], cwd=work, env=dict(env, PROBE_SLEEP="1"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_logged(log)
    os.kill(fs, signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out, err) == (0, b"", b"")
    first, second = _records(log)
    assert first["ppid"] == fs and second["ppid"] != fs
    assert run([CLANG, "-O2", "-c", "x.c", "-o", "y.o"], work, env).returncode == 0
    assert (work / "x.o").read_bytes() == (work / "y.o").read_bytes()


@needs_library
def test_a_stopped_fork_server_does_not_stop_the_build(work, env, srv, tmp_path):
    """A fork server that does not answer (SIGSTOP here) costs START_TIMEOUT_S: the worker then
    compiles by itself, and once the fork server runs again, the compile it had been asked for
    does not run beside the worker's (its child sees the worker gone)."""
    cc, log, env, _, fs = _probed(tmp_path, env, work, srv)
    os.kill(fs, signal.SIGSTOP)
    try:
        t = time.monotonic()
        r = run([AP_CC, cc, "-O2", "-c", "x.c", "-o", "x.o"], work, env)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
        assert time.monotonic() - t >= forkserver.START_TIMEOUT_S * 0.9
    finally:
        os.kill(fs, signal.SIGCONT)
    time.sleep(1)
    assert [rec["ppid"] == fs for rec in _records(log)] == [False]
    assert run([CLANG, "-O2", "-c", "x.c", "-o", "y.o"], work, env).returncode == 0
    assert (work / "x.o").read_bytes() == (work / "y.o").read_bytes()


@needs_library
def test_ctrl_c_reaches_a_forked_compile(work, env, srv, tmp_path):
    cc, log, env, _, fs = _probed(tmp_path, env, work, srv)
    p = subprocess.Popen([AP_CC, cc, "-c", "x.c", "-o", "x.o"], cwd=work, env=dict(env, PROBE_SLEEP="60"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_logged(log)
    compile_ = _records(log)[0]
    assert compile_["ppid"] == fs
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == -signal.SIGINT
    assert wait_gone(compile_["pid"]), "the forked compile survived Ctrl-C on the client"
    assert alive(fs)


@needs_library
def test_a_fork_server_ends_with_its_compiler_and_its_compile_server(work, env, srv, tmp_path):
    """A new compiler binary (a package upgrade: another inode) gets a new fork server, and the
    old one ends within seconds (a file it mapped was deleted); stopping the compile server ends
    its fork servers."""
    cc = _probe(tmp_path)
    pid = start(env, work, srv)
    old = _fork_server_up(env, work, srv, cc, pid)
    fresh = tmp_path / "bin" / "new"
    shutil.copy2(cc, fresh)
    os.replace(fresh, cc)
    assert wait_gone(old, 10), "the fork server of a replaced compiler is still running"
    new = _fork_server_up(env, work, srv, cc, pid)
    assert new != old
    server.stop(str(srv))
    assert wait_gone(new, 10), "a fork server outlived its compile server"


@needs_library
def test_the_library_changes_nothing_unless_asked(work, tmp_path):
    """Preloaded into clang-19 without AUTOPASS_FORKSERVER_SOCKET, the library is not there: the
    same output, object and exit codes."""
    env = dict(os.environ, LC_ALL="C")
    pre = dict(env, LD_PRELOAD=forkserver.LIBRARY)
    for args in (["--version"], ["-O2", "-c", "x.c", "-o", "x.o"], ["-c", "err.c", "-o", "e.o"]):
        a = run([CLANG] + args, work, env)
        a_obj = (work / "x.o").read_bytes() if "x.o" in args else None
        b = run([CLANG] + args, work, pre)
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)
        if a_obj is not None:
            assert (work / "x.o").read_bytes() == a_obj


def test_a_server_whose_spares_die_as_they_start_stops_listening(tmp_path):
    """A worker that cannot start (a broken install: the first run of this fork server work died
    importing a module in every spare) must not leave clients waiting for a worker that never
    comes: after SPARES_FAILING failed spares the server closes its socket, and a client that
    had connected sees it close (the real client then runs the standalone wrapper)."""
    import socket
    sock = tmp_path / "s.sock"
    go = tmp_path / "go"  # spares die only once the test's client is in the queue: else all
    # SPARES_FAILING may die, and the socket go, before the client connects (CI saw that race)
    code = ("import os, sys, time; from autopass_cc import server\n"
            "def broken(*a):\n"
            f"    while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
            "    raise ImportError('a broken install')\n"
            "server._spare = broken\n"
            f"sys.exit(server.serve({str(sock)!r}, 60))\n")
    p = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL,
                         env=dict(os.environ, PYTHONPATH=str(Path(server.__file__).parents[1])))
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.02)
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(sock))
        go.touch()
        c.settimeout(20)
        try:
            assert c.recv(16) == b""   # closed, not left waiting
        except ConnectionResetError:
            pass                       # (the same: it was in the listener's queue when it closed)
        assert p.wait(timeout=20) == 0
        assert not sock.exists()
    finally:
        p.kill()
