"""Settings: defaults < user config < project config < ``AUTOPASS_*`` environment < command line.

* user config: ``$XDG_CONFIG_HOME/autopass-cc/config.toml`` (else ``~/.config/autopass-cc/config.toml``);
* project config: ``autopass.toml`` (top level keys), or ``[tool.autopass]`` in ``pyproject.toml``,
  found by walking up from the working directory (``AUTOPASS_PROJECT`` names the directory directly);
* environment: ``AUTOPASS_<KEY>`` for each top-level key (``AUTOPASS_BUDGET=10``,
  ``AUTOPASS_ON_MISS=off``), plus ``AUTOPASS_CC``/``AUTOPASS_CXX`` for the real compilers and
  ``AUTOPASS_CACHE_DIR`` for the cache.

Per-project state lives in ``.autopass/`` beside the project file (ARCHITECTURE.md decision 8).
TOML is read with tomllib (Python 3.11; it is tomli merged into the standard library) or tomli.
This module is imported by the compile hot path: it must stay light.
"""

from __future__ import annotations

import os

from .errors import ConfigError



def _toml():
    """The TOML reader, imported on first use (~5 ms; the hot path needs it only when a project
    or user config file exists)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    return tomllib

PROJECT_FILE = "autopass.toml"
STATE_DIR = ".autopass"

#: Every setting with its default and type.  Units: seconds for timeouts, bytes for sizes.
DEFAULTS: dict = {
    "run": None,               # the user's run command (shell text, run in the project directory)
    "check": None,             # optional check command whose output must also stay the same
    "target": None,            # path of the linked program the run command exercises
    "budget": 24,              # trials per session
    "seed": 0,
    "on_miss": "off",          # "off" | "link": tune inside the build when the target is linked
    "proposer": "auto",        # "auto" | "offline" | "random" | "llm"
    "compiler": None,          # real C compiler (else AUTOPASS_CC, clang-19, clang)
    "cxx_compiler": None,      # real C++ compiler (else AUTOPASS_CXX, clang++-19, clang++)
    "allow_unsafe_math": False,
    "allow_native": False,
    "metric": "cpu",           # "cpu" (user+sys of the process tree) | "wall"
    "run_timeout": 120.0,      # seconds for one run of the run command
    "min_rounds": 5,
    "max_rounds": 15,
    "confirm_rounds": 15,      # fresh rounds confirming the final winner against the baseline
    "confidence": 0.95,
    "min_gain": 0.005,         # smallest speedup (a ratio - 1) worth keeping; +-2x it ends a measurement
    "max_tus": 6,              # most TUs a session tunes (the hottest first)
    "profile": "auto",         # "auto" | "callgrind" | "none": how hot TUs are found
    "pgo": True,               # record an instrumentation profile of the run: candidates may use it
    "cache_size": 2 * 1024 ** 3,   # bytes (the object cache; least-recently-used eviction beyond it)
    "object_cache": True,      # cache compiled objects (objcache.py); AUTOPASS_OBJECT_CACHE=0 turns it off
    "fork_server": True,       # start compiles as forks of an initialised compiler (forkserver.py)
    "llm": {},                 # base_url, model, api_key, timeout, max_calls, schema_mode ...
}

_INT_KEYS = {"budget", "seed", "min_rounds", "max_rounds", "confirm_rounds", "max_tus", "cache_size"}
_FLOAT_KEYS = {"run_timeout", "confidence", "min_gain"}
_BOOL_KEYS = {"allow_unsafe_math", "allow_native", "object_cache", "pgo", "fork_server"}
_CHOICES = {"on_miss": ("off", "link"), "proposer": ("auto", "offline", "random", "llm"),
            "metric": ("cpu", "wall"), "profile": ("auto", "callgrind", "none")}


def cache_dir() -> str:
    """``$AUTOPASS_CACHE_DIR``, else ``$XDG_CACHE_HOME/autopass-cc``, else ``~/.cache/autopass-cc``."""
    explicit = os.environ.get("AUTOPASS_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "autopass-cc")


def find_project(start: str | None = None) -> str | None:
    """Directory holding ``autopass.toml`` (or a pyproject.toml with ``[tool.autopass]``), searched
    from ``start`` (default: cwd) upwards; ``AUTOPASS_PROJECT`` overrides.  None if there is none."""
    explicit = os.environ.get("AUTOPASS_PROJECT")
    if explicit:
        return os.path.abspath(explicit)
    d = os.path.abspath(start or os.getcwd())
    while True:
        if os.path.isfile(os.path.join(d, PROJECT_FILE)):
            return d
        pp = os.path.join(d, "pyproject.toml")
        if os.path.isfile(pp):
            try:
                with open(pp, "rb") as f:
                    if b"[tool.autopass]" in f.read():
                        return d
            except OSError:
                pass
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def state_dir(project: str) -> str:
    """``<project>/.autopass``: build log, sessions, reports, lock."""
    return os.path.join(project, STATE_DIR)


def _read_toml(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    toml = _toml()
    try:
        with open(path, "rb") as f:
            return toml.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, toml.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}; fix the file or delete it") from None


def _coerce(key: str, value, origin: str):
    if value is None:
        return None
    try:
        if key in _INT_KEYS:
            if isinstance(value, str) and key == "cache_size":
                return _parse_size(value)
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if key in _FLOAT_KEYS:
            return float(value)
        if key in _BOOL_KEYS:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
    except ValueError:
        raise ConfigError(f"{origin}: {key} = {value!r} is not a valid {key} value") from None
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{origin}: {key} = {value!r}; choose one of {', '.join(_CHOICES[key])}")
    if key == "llm" and not isinstance(value, dict):
        raise ConfigError(f"{origin}: llm must be a table ([llm])")
    return value


def _parse_size(text: str) -> int:
    """'500M', '2G', '1024' -> bytes (powers of 1024, as ccache's max_size)."""
    text = text.strip().upper().rstrip("B")
    mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def _merge(settings: dict, layer: dict, origin: str) -> None:
    for key, value in layer.items():
        if key not in DEFAULTS:
            raise ConfigError(f"{origin}: unknown setting {key!r} (known: {', '.join(sorted(DEFAULTS))})")
        value = _coerce(key, value, origin)
        if key == "llm":
            settings["llm"] = {**settings["llm"], **value}
        else:
            settings[key] = value


def project_config_path(project: str) -> str:
    """The file that holds the project's settings (autopass.toml, or pyproject.toml)."""
    path = os.path.join(project, PROJECT_FILE)
    if os.path.isfile(path) or not os.path.isfile(os.path.join(project, "pyproject.toml")):
        return path
    return os.path.join(project, "pyproject.toml")


def load(project: str | None = None, overrides: dict | None = None) -> dict:
    """Merged settings (a plain dict with every key of DEFAULTS plus ``project``).

    Raises ConfigError with a one-line message naming the file and the key."""
    settings = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user_file = os.path.join(xdg, "autopass-cc", "config.toml")
    _merge(settings, _read_toml(user_file), user_file)
    if project:
        path = project_config_path(project)
        data = _read_toml(path)
        if path.endswith("pyproject.toml"):
            data = data.get("tool", {}).get("autopass", {})
        _merge(settings, data, path)
    env_layer = {}
    for key in DEFAULTS:
        if key == "llm":
            continue
        value = os.environ.get("AUTOPASS_" + key.upper())
        if value is not None and value != "":
            env_layer[key] = value
    _merge(settings, env_layer, "environment")
    _merge(settings, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    settings["project"] = project
    return settings
