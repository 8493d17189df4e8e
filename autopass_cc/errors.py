"""One error tree.  Every error a user can cause carries a one-line message saying what is wrong
and how to fix it; the CLI prints ``autopass-cc: <message>`` and the wrapper falls back to the
user's own compile command (ARCHITECTURE.md, decision 3)."""


class AutopassError(Exception):
    """Base of all errors autopass-cc raises on purpose.  ``str(err)`` is the one-line message."""


class ConfigError(AutopassError):
    """Bad or missing configuration (autopass.toml, pyproject.toml, AUTOPASS_* variables)."""


class CompilerNotFound(AutopassError):
    """No real compiler could be found, or the one named resolves to autopass-cc itself."""


class PipelineError(AutopassError):
    """A Pipeline (or text proposed as one) is not allowed, not typed right, or not accepted by
    the installed LLVM.  ``reason`` is a short machine-friendly tag (e.g. ``"forbidden-flag"``)."""

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


class BuildLogError(AutopassError):
    """The per-project build log does not contain what a session needs (no link of the target,
    no compile of one of its objects)."""


class SessionError(AutopassError):
    """A tuning session cannot start or go on (lock held, run command fails, output not
    deterministic, ...)."""
