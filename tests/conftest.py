"""Shared fixtures: the installed console scripts, an isolated cache and config per test, copies of
the test programs under tests/programs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = os.path.join(ROOT, "tests", "programs")
SCRIPTS = sysconfig.get_path("scripts")


def script(name: str) -> str:
    """Full path of an installed console script (avoids slow pyenv shims on PATH)."""
    path = os.path.join(SCRIPTS, name)
    if not os.path.exists(path):
        found = shutil.which(name)
        if not found:
            pytest.skip(f"{name} is not installed; run ./install.sh")
        return found
    return path


@pytest.fixture
def wrapper() -> str:
    return script("autopass-cc")


@pytest.fixture
def env(tmp_path) -> dict:
    """Environment with a private cache and user config, and a fast measurement policy (tests
    check behaviour, not speed: benchmarks/ measure speed)."""
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("AUTOPASS_") or k.startswith("OPENAI_"):
            del e[k]
    e.update(AUTOPASS_CACHE_DIR=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"),
             AUTOPASS_MIN_ROUNDS="3", AUTOPASS_MAX_ROUNDS="3", AUTOPASS_CONFIRM_ROUNDS="3",
             AUTOPASS_PROFILE="none")
    return e


@pytest.fixture
def program(tmp_path):
    """Copy a test program into the test's directory: ``program("kernels-make") -> path``."""
    def copy(name: str) -> str:
        dst = tmp_path / name
        shutil.copytree(os.path.join(PROGRAMS, name), dst)
        return str(dst)
    return copy


def write_project(d: str, files: dict, toml: str = 'run = "./prog"\ntarget = "prog"\n') -> str:
    """Create directory ``d`` with ``files`` (name -> text; a name may have directories) and an
    autopass.toml; returns ``d``."""
    os.makedirs(d)
    for name, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    with open(os.path.join(d, "autopass.toml"), "w") as f:
        f.write(toml)
    # The object cache does not store a compile that read a file modified (mtime or ctime) less
    # than objcache.TOO_NEW_NS before it started (ccache's too-new rule).  Without this pause a
    # fast machine compiled the first source within that window, and a test counting object hits
    # of a rebuild saw one fewer (CI: test_a_one_step_build_is_split...: 2 hits of 3).
    time.sleep(0.05)
    return d


def run(cmd, cwd, env, check=True, **kw) -> subprocess.CompletedProcess:
    """Run a command (list, or str through the shell), capture text output, assert success."""
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str),
                       stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed with {r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}")
    return r


def stats(wrapper, cwd, env) -> dict:
    return json.loads(run([wrapper, "stats", "--json"], cwd, env).stdout)
