"""autopass-cc: a drop-in clang wrapper that compiles each translation unit with a tuned pipeline.

Data flow (one file per stage): ``wrapper`` (argv -> exit code) -> ``invocation`` (classify) ->
``cachekey`` -> ``store`` (tuned pipelines, stats) -> ``emit`` (run the real clang).  The tuning
session lives in ``tuning/`` and is never imported by the compile hot path.
"""

__version__ = "0.1.0"

#: Bumped whenever the meaning of a cache key or of a stored entry changes (ccache's "version" in
#: its hash has the same role).  Entries written under another schema are never used.
SCHEMA_VERSION = 1
