"""Settings layering: defaults < user config < project config < AUTOPASS_* < command line."""

import os

import pytest

from autopass_cc import config
from autopass_cc.errors import ConfigError


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("AUTOPASS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_layers(clean_env, monkeypatch):
    tmp = clean_env
    (tmp / "xdg" / "autopass-cc").mkdir(parents=True)
    (tmp / "xdg" / "autopass-cc" / "config.toml").write_text('budget = 5\nmetric = "wall"\n[llm]\nmodel = "m1"\n')
    proj = tmp / "proj"
    (proj / "sub" / "deeper").mkdir(parents=True)
    (proj / "autopass.toml").write_text('run = "./x"\nbudget = 7\n[llm]\nbase_url = "http://127.0.0.1:1/v1"\n')
    assert config.find_project(str(proj / "sub" / "deeper")) == str(proj)
    s = config.load(str(proj))
    assert s["budget"] == 7 and s["metric"] == "wall" and s["run"] == "./x"
    assert s["llm"] == {"model": "m1", "base_url": "http://127.0.0.1:1/v1"}
    monkeypatch.setenv("AUTOPASS_BUDGET", "9")
    assert config.load(str(proj))["budget"] == 9
    assert config.load(str(proj), {"budget": 11})["budget"] == 11


def test_pyproject_table(clean_env):
    proj = clean_env / "p"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[project]\nname="x"\n[tool.autopass]\nrun = "./y"\n')
    assert config.find_project(str(proj)) == str(proj)
    assert config.load(str(proj))["run"] == "./y"


@pytest.mark.parametrize("text,word", [
    ("budget = 'many'", "budget"), ("on_miss = 'sometimes'", "on_miss"), ("frobnicate = 1", "frobnicate"),
    ("run = ", "cannot read"),
])
def test_bad_config_is_one_clear_line(clean_env, text, word):
    proj = clean_env / "p"
    proj.mkdir()
    (proj / "autopass.toml").write_text(text + "\n")
    with pytest.raises(ConfigError) as e:
        config.load(str(proj))
    assert word in str(e.value) and "\n" not in str(e.value)


def test_cache_dir_order(clean_env, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert config.cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "autopass-cc")
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdgc")
    assert config.cache_dir() == "/tmp/xdgc/autopass-cc"
    monkeypatch.setenv("AUTOPASS_CACHE_DIR", "/tmp/apc")
    assert config.cache_dir() == "/tmp/apc"


def test_size_parsing(clean_env, monkeypatch):
    monkeypatch.setenv("AUTOPASS_CACHE_SIZE", "500M")
    assert config.load(None)["cache_size"] == 500 * 1024 ** 2


def test_init_names_the_cmake_rebuild_in_a_cmake_tree(tmp_path, monkeypatch):
    """With CMake, CC=... does nothing once a tree is configured: init's (and tune's) rebuild hint
    names `cmake --build <tree>` when the target sits in a tree with a CMakeCache.txt."""
    from click.testing import CliRunner
    from autopass_cc.cli import cli
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOPASS_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "build" / "bin").mkdir(parents=True)
    (tmp_path / "build" / "CMakeCache.txt").write_text("")
    r = CliRunner().invoke(cli, ["init", "--run", "./build/bin/prog 3"])
    assert r.exit_code == 0, r.output
    assert "cmake --build build --clean-first" in r.output and "CC=autopass-cc" not in r.output
    (tmp_path / "build" / "CMakeCache.txt").unlink()
    r = CliRunner().invoke(cli, ["init", "--force", "--run", "./build/bin/prog 3"])
    assert "make clean && make CC=autopass-cc" in r.output   # (overrides a CC the Makefile sets)
    assert "build/bin/prog does not exist yet (guessed from --run)" in r.output
    # A CMake project not configured yet (snappy, C++): the toolchain file and the C++ launcher.
    (tmp_path / "CMakeLists.txt").write_text("project(p CXX)\n")
    r = CliRunner().invoke(cli, ["init", "--force", "--run", "./build/bin/prog 3"])
    assert "-DCMAKE_TOOLCHAIN_FILE=" in r.output and "autopass.cmake" in r.output
    assert "-DCMAKE_CXX_COMPILER_LAUNCHER=autopass-c++" in r.output and "make clean" not in r.output
    assert "./configure" not in r.output
    # CMake and a configure script (FLAC): the in-tree target may be the autotools build's
    (tmp_path / "configure").write_text("#!/bin/sh\n")
    r = CliRunner().invoke(cli, ["init", "--force", "--run", "./build/bin/prog 3"])
    assert "cmake -S . -B build" in r.output and "./configure CC=autopass-cc CXX=autopass-c++ and make" in r.output
    (tmp_path / "configure").unlink()
    (tmp_path / "CMakeLists.txt").unlink()
    (tmp_path / "configure").write_text("#!/bin/sh\n")
    r = CliRunner().invoke(cli, ["init", "--force", "--run", "./build/bin/prog 3"])
    assert "./configure CC=autopass-cc CXX=autopass-c++" in r.output
    # Meson (pixman ships meson.build and a configure script): meson first, configure as the other way.
    (tmp_path / "meson.build").write_text("project('p', 'c')\n")
    r = CliRunner().invoke(cli, ["init", "--force", "--run", "./build/bin/prog 3"])
    assert "CC=autopass-cc CXX=autopass-c++ meson setup build" in r.output
    assert "or ./configure CC=autopass-cc" in r.output
    # A meson build directory already set up: its compiler is fixed there, so set it up again.
    (tmp_path / "build" / "meson-info").mkdir()
    r = CliRunner().invoke(cli, ["init", "--force", "--run", "./build/bin/prog 3"])
    assert "meson setup --wipe build" in r.output and "./configure" not in r.output
    # with on_miss = "link" (init's default) the build tunes by itself: the hint says so
    assert "the target's link runs a session" in r.output
    r = CliRunner().invoke(cli, ["init", "--force", "--on-miss", "off", "--run", "./build/bin/prog 3"])
    assert r.output.rstrip().endswith("then autopass-cc tune")


@pytest.mark.parametrize("run_cmd, want", [
    ("./bench 2000", "bench"),
    ("Z=programs/zstd; D=in.bin; $Z -q -c $D | $Z -d | cksum", "programs/zstd"),   # seen on zstd
    ("cd sub && ./prog x", "sub/prog"),
    ("time env A=1 nice -n 5 ./bench > /dev/null", "bench"),
    ("for i in 1 2 3; do ./bench $i; done", "bench"),
    ("sh -c 'cd sub; ./prog'", "sub/prog"),
    ("Z=$PWD/programs/zstd; $Z -b1", "programs/zstd"),
    ("./not-built-yet 3 | md5sum", "not-built-yet"),
    ("'unbalanced", None),
])
def test_init_guesses_the_program_the_run_command_starts(tmp_path, run_cmd, want):
    from autopass_cc.cli import guess_target
    for f in ("bench", "programs/zstd", "sub/prog"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    assert guess_target(run_cmd, str(tmp_path)) == want
