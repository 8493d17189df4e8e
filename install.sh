#!/usr/bin/env bash
# Install autopass-cc on Debian: clang-19 / LLVM 19 from Debian's packages when absent, then the
# package (pip install -e . into the python3 on PATH; its console scripts autopass-cc and
# autopass-c++ go to that Python's bin directory, linked into /usr/local/bin when that is not on
# PATH), then the masquerade links in shims/bin.  Idempotent: a second run changes nothing.
# It also installs a small local model and its OpenAI-compatible server (scripts/install-local-model.sh:
# llama.cpp built from source, ~7 min the first time) for the LLM proposer's offline path.
#   ./install.sh                   install, then run the main job on the bundled example (autopass-cc demo)
#   ./install.sh --no-demo         install only
#   ./install.sh --no-local-model  skip the local model and its server
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run_demo=1
local_model=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) run_demo=0 ;;
    --no-local-model) local_model=0 ;;
    *) echo "install.sh: unknown option $arg (use --no-demo, --no-local-model)" >&2; exit 2 ;;
  esac
done

need_apt=()
for tool in clang-19 opt-19 llvm-profdata-19 ld.lld-19 make cmake ninja autoreconf libtoolize valgrind; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
# musl's C library, for the compile client below (why: there).
musl="/usr/lib/$(uname -m)-linux-musl"
[ -f "$musl/libc.a" ] || need_apt+=("musl-dev")
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "install.sh: installing Debian packages (missing: ${need_apt[*]})"
  sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq \
    clang-19 llvm-19 lld-19 make cmake ninja-build autoconf automake libtool valgrind musl-dev >/dev/null
fi

py="${PYTHON:-python3}"
# Editable in "compat" mode: a plain path entry, no import hook to load at every compile.
"$py" -m pip install -q --disable-pip-version-check -e "$here[test]" --config-settings editable_mode=compat
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
# Byte-compile the package: every compile starts a fresh interpreter, and with
# PYTHONDONTWRITEBYTECODE set (as on some machines) nothing would ever be cached.
"$py" -m compileall -q "$here/autopass_cc" >/dev/null
bindir="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
# Fast launchers for the compile hot path: `python -S` skips site initialisation (measured here:
# 34 ms -> 7 ms per start); the wrapper loads site itself for the management subcommands.
pyexe="$("$py" -c 'import sys; print(sys.executable)')"
paths="$("$py" -c 'import sysconfig; print(repr(sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})))')"
for pair in "autopass-cc:main_c" "autopass-c++:main_cxx"; do
  name="${pair%%:*}"; fn="${pair##*:}"
  cat > "$bindir/$name.tmp" <<LAUNCHER
#!$pyexe -S
# autopass-cc launcher written by install.sh (python -S: no site initialisation on the hot path)
import sys
sys.path[1:1] = [${here@Q}] + $paths
from autopass_cc.wrapper import $fn
sys.exit($fn())
LAUNCHER
  chmod +x "$bindir/$name.tmp" && mv "$bindir/$name.tmp" "$bindir/$name"
done
# The compile client (autopass_cc/client.c): a small C program in front of the launchers above,
# handing each call to a warm compile server (autopass_cc/server.py) so a compile does not pay
# Python's start-up; it runs the same launcher code standalone whenever the server cannot serve.
# If it cannot be built, the Python launchers stay the console scripts.
hdr="$(mktemp -d)"
"$py" - "$here" "$pyexe" "$paths" > "$hdr/client_paths.h" <<'PY'
import ast, json, os, sys
here, pyexe, paths = sys.argv[1], sys.argv[2], ast.literal_eval(sys.argv[3])
c = lambda s: json.dumps(s, ensure_ascii=False)  # a JSON string is a valid C string literal here
print("#define AP_PYTHON", c(pyexe))
print("#define AP_PATHS", c(repr([here] + paths)))
print("#define AP_TAG", c(os.urandom(6).hex()))   # a new server per install
PY
# Static against musl where musl-dev is installed, else static against glibc, else dynamic.  A
# client starts once per compile, and a static glibc program's start-up detects the CPU's
# features and caches with dozens of cpuid instructions, each a VM exit on a virtual machine:
# measured here, 0.67 ms from spawn to exit for an empty static glibc program, 0.11 ms with musl
# (20 cpuid alone: 0.15 ms); through a cold Ninja -j1 build, 0.49 ms less outside clang per compile
# (6.96 -> 6.47 ms; bare clang-19 4.1 ms).  Static rather than dynamic: 0.11 ms less per call.
resource="$(clang-19 -print-resource-dir 2>/dev/null || true)"
for name in autopass-cc autopass-c++; do
  if { [ -f "$musl/libc.a" ] && [ -n "$resource" ] &&
       clang-19 -O2 -Wall -static -nostdinc -isystem "$musl/../../include/$(uname -m)-linux-musl" \
         -isystem "$resource/include" -nostdlib -include "$hdr/client_paths.h" -o "$bindir/$name.client" \
         "$musl/crt1.o" "$musl/crti.o" "$here/autopass_cc/client.c" "$musl/libc.a" "$musl/crtn.o" 2>"$hdr/err"; } ||
     clang-19 -O2 -Wall -static -include "$hdr/client_paths.h" -o "$bindir/$name.client" "$here/autopass_cc/client.c" 2>"$hdr/err" ||
     clang-19 -O2 -Wall -include "$hdr/client_paths.h" -o "$bindir/$name.client" "$here/autopass_cc/client.c" 2>"$hdr/err"; then
    mv "$bindir/$name.client" "$bindir/$name"
  else
    echo "install.sh: could not build the compile client ($(head -1 "$hdr/err")); using the Python launchers" >&2
  fi
done
# The compiler fork server library (autopass_cc/forkserver.c): preloaded into the real compiler,
# it lets a compile start as a fork of an already-initialised clang (measured here: 25.5 ms -> 8.3
# ms for `clang-19 -O3 -c` of an empty file).  Without it, compiles are exec-ed as before.
if ! clang-19 -O2 -Wall -shared -fPIC -o "$here/autopass_cc/libautopass-forkserver.so.tmp" "$here/autopass_cc/forkserver.c" -ldl 2>"$hdr/err"; then
  echo "install.sh: could not build the compiler fork server ($(head -1 "$hdr/err")); compiles are exec-ed" >&2
  rm -f "$here/autopass_cc/libautopass-forkserver.so.tmp"
else
  mv "$here/autopass_cc/libautopass-forkserver.so.tmp" "$here/autopass_cc/libautopass-forkserver.so"
fi
rm -rf "$hdr"
# Servers of an earlier install stop by themselves (idle, or their code changed); stop them now.
"$bindir/autopass-cc" server stop >/dev/null 2>&1 || true
# Under pyenv, `autopass-cc` on PATH is pyenv's shim, a bash script that runs `pyenv exec`:
# measured here, 74 ms per call through it against 23 ms for the client itself (clang-19: 21 ms),
# on every compile of a build that says CC=autopass-cc.  The two shims become links to the
# client; `pyenv rehash` keeps a shim that exists (it only adds missing ones).
if command -v pyenv >/dev/null 2>&1; then
  shimdir="$(pyenv root)/shims"
  case "$bindir" in "$(pyenv root)"/*)
    for name in autopass-cc autopass-c++; do
      if [ -e "$shimdir/$name" ]; then ln -sf "$bindir/$name" "$shimdir/$name"; fi
    done ;;
  esac
fi
if ! command -v autopass-cc >/dev/null 2>&1; then
  if [ -w /usr/local/bin ]; then
    ln -sf "$bindir/autopass-cc" /usr/local/bin/autopass-cc
    ln -sf "$bindir/autopass-c++" /usr/local/bin/autopass-c++
  else
    echo "install.sh: add $bindir to your PATH to use autopass-cc" >&2
  fi
fi
# Masquerade links: put shims/bin first in PATH to route cc/clang/c++/clang++ through autopass-cc.
# shims/bin/autopass-cc and autopass-c++ are how the CMake toolchain file (shims/autopass.cmake)
# finds the console scripts without PATH.
mkdir -p "$here/shims/bin"
for name in cc clang autopass-cc; do ln -sf "$bindir/autopass-cc" "$here/shims/bin/$name"; done
for name in c++ clang++ autopass-c++; do ln -sf "$bindir/autopass-c++" "$here/shims/bin/$name"; done
echo "install.sh: autopass-cc installed ($(command -v autopass-cc || echo "$bindir/autopass-cc"))"

if [ "$local_model" = 1 ]; then
  PYTHON="$py" bash "$here/scripts/install-local-model.sh"
fi

if [ "$run_demo" = 1 ]; then
  "$bindir/autopass-cc" demo
fi
