"""Management subcommands: ``autopass-cc init | tune | stats | explain | cache | demo | doctor | help``.

Reached through wrapper.main when the first argument is one of those words.  Every error a user
can cause is one ``autopass-cc: ...`` line and exit status 1 (2 for usage errors, as click does).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile

import click

from . import config as cfg
from .errors import AutopassError


def _project_or_fail() -> str:
    project = cfg.find_project()
    if project is None:
        raise AutopassError("no autopass.toml here or above; create one with: autopass-cc init --run 'CMD'")
    return project


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """autopass-cc: a drop-in clang wrapper that compiles each translation unit with a tuned pipeline.

    Use it as the compiler (CC=autopass-cc make); manage it with the commands below."""


@cli.command()
@click.option("--run", "run_cmd", required=True, help="Command that runs the program (timed; its output must not change).")
@click.option("--target", help="Path of the linked program, relative to this directory (default: guessed from --run).")
@click.option("--budget", type=int, default=24, show_default=True, help="Trials per tuning session.")
@click.option("--on-miss", type=click.Choice(["link", "off"]), default="link", show_default=True,
              help="Tune inside the build when the target is linked and has untuned TUs.")
@click.option("--check", "check_cmd", help="Optional extra check command whose output must also stay the same.")
@click.option("--force", is_flag=True, help="Overwrite an existing autopass.toml.")
def init(run_cmd, target, budget, on_miss, check_cmd, force):
    """Write autopass.toml in the current directory."""
    path = os.path.join(os.getcwd(), cfg.PROJECT_FILE)
    if os.path.exists(path) and not force:
        raise AutopassError(f"{path} exists; use --force to overwrite it")
    guessed = not target
    if not target:
        target = guess_target(run_cmd, os.getcwd())
        if not target:
            raise AutopassError("cannot guess the target from --run; pass --target PATH")
    if os.path.isdir(target):
        raise AutopassError(f"--target {target} is a directory; give the program the run command starts "
                            f"(e.g. {os.path.join(target, os.path.basename(os.path.normpath(target)))})")
    lines = ["# autopass-cc project settings (autopass-cc init)",
             f"run = {_toml_str(run_cmd)}", f"target = {_toml_str(target)}", f"budget = {budget}",
             f"on_miss = {_toml_str(on_miss)}"]
    if check_cmd:
        lines.append(f"check = {_toml_str(check_cmd)}")
    lines += ["# proposer = \"offline\"   # offline | random | llm (auto: llm when [llm] base_url is set)",
              "# allow_native = false     # let sessions try -march=native", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.makedirs(cfg.state_dir(os.getcwd()), exist_ok=True)
    click.echo(f"wrote {path}: run = {run_cmd!r}, target = {target!r}, on_miss = {on_miss!r}")
    if not os.path.isfile(target):
        click.echo(f"note: {target} does not exist yet{' (guessed from --run)' if guessed else ''}; after the "
                   "build it must be the program the run command starts (else: autopass-cc init --force --target PATH)")
    tree = _build_tree(os.getcwd(), target)
    meson = _build_tree(os.getcwd(), target, "meson-info")
    # With on_miss = "link" the build itself runs the session at the target's link.
    tune = ("the target's link runs a session (on_miss = \"link\"), or run autopass-cc tune" if on_miss == "link"
            else "autopass-cc tune")
    ninja_note = ("; Ninja shows a command's output when it ends, so a session at the link is silent until "
                  "then: --on-miss off and autopass-cc tune after the build show its progress")
    if meson:
        click.echo(f"next: meson fixes the compiler when a build directory is set up: set {meson} up again "
                   f"through autopass-cc (CC=autopass-cc CXX=autopass-c++ meson setup --wipe {meson}), build it "
                   f"(meson compile -C {meson}); then {tune}" + (ninja_note if on_miss == "link" else ""))
    elif tree:
        click.echo(f"next: build with CMake through autopass-cc (configured with -DCMAKE_TOOLCHAIN_FILE=.../shims/"
                   f"autopass.cmake or the compiler and linker launchers), e.g. cmake --build {tree} --clean-first; "
                   f"then {tune}")
    elif os.path.isfile("CMakeLists.txt"):
        toolchain = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shims", "autopass.cmake")
        click.echo(f"next: configure a fresh build tree through autopass-cc (cmake -S . -B build "
                   f"-DCMAKE_TOOLCHAIN_FILE={toolchain}, or -DCMAKE_C_COMPILER_LAUNCHER=autopass-cc "
                   "-DCMAKE_CXX_COMPILER_LAUNCHER=autopass-c++ and the same _LINKER_LAUNCHER ones), build it; "
                   f"then {tune}" + (f"; for an in-tree build (the target {target}), ./configure CC=autopass-cc "
                                     "CXX=autopass-c++ and make" if os.path.isfile("configure") else ""))
    elif os.path.isfile("meson.build"):
        click.echo("next: set up a build directory through autopass-cc (CC=autopass-cc CXX=autopass-c++ meson setup "
                   f"build), build it (meson compile -C build); then {tune}"
                   + ("; or ./configure CC=autopass-cc CXX=autopass-c++ and make" if os.path.isfile("configure") else "")
                   + (ninja_note if on_miss == "link" else ""))
    elif os.path.isfile("configure"):
        click.echo(f"next: ./configure CC=autopass-cc CXX=autopass-c++, then make clean && make; then {tune}")
    else:
        click.echo("next: build with CC=autopass-cc (C++: CXX=autopass-c++), e.g. make clean && make CC=autopass-cc "
                   "CXX=autopass-c++ (on make's command line they override a CC set in the Makefile); then "
                   f"{tune}")


_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
#: Words after which the next word is the program (``time ./prog``, ``env X=1 ./prog``, ``do ./prog``).
_PREFIX_COMMANDS = {"env", "time", "nice", "exec", "command", "taskset", "timeout", "stdbuf", "nohup",
                    "do", "then", "else", "if", "while", "until", "!", "{"}
#: Shell words that start or end a compound command and run nothing themselves.
_SKIP_COMMANDS = {"for", "case", "select", "done", "fi", "esac", "}"}


def guess_target(run_cmd: str, cwd: str) -> str | None:
    """The program a shell command line runs, as a path relative to ``cwd`` (for ``init``), or None.

    Reads the line as the shell would split it into simple commands (``;``, ``&&``, ``||``, ``|``,
    ``&``): ``cd DIR`` changes the directory the next words are relative to, ``NAME=value`` words
    set variables (``$NAME`` / ``${NAME}`` are replaced), prefix commands (``time``, ``env``,
    ``nice`` ...) and their options are skipped.  The first command word that names an existing
    file is the target; else the first one with a ``/``; else the first command word.  Never
    raises on odd shell text (None, or the best guess)."""
    try:
        lex = shlex.shlex(run_cmd, posix=True, punctuation_chars=";&|<>()")
        lex.whitespace_split = True
        tokens = list(lex)
    except ValueError:
        return None
    here, variables, candidates = "", {}, []
    segment: list[str] = []

    def value(name: str, default: str) -> str:
        if name in variables:
            return variables[name]
        return os.path.join(cwd, here) if name == "PWD" else os.environ.get(name, default)

    def expand(word: str) -> str:
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: value(m.group(1), m.group(0)), word)

    def command(words: list[str]) -> None:
        nonlocal here
        words = list(words)
        while words and _ASSIGNMENT.match(words[0]):
            name, _, text = words.pop(0).partition("=")
            variables[name] = expand(text)
        while words and words[0] in _PREFIX_COMMANDS:
            words.pop(0)
            while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0]) or words[0].isdigit()):
                words.pop(0)
        if not words or words[0] in _SKIP_COMMANDS:
            return
        word = expand(words[0])
        if os.path.basename(word) in ("sh", "bash", "dash") and len(words) > 2 and words[1] == "-c":
            inner = guess_target(words[2], os.path.join(cwd, here))
            if inner:
                candidates.append(os.path.normpath(os.path.join(here, inner)))
            return
        if word == "cd":
            here = os.path.normpath(os.path.join(here, expand(words[1]))) if len(words) > 1 else ""
            return
        candidates.append(os.path.normpath(os.path.join(here, word)) if ("/" in word or here) else word)

    for tok in tokens + [";"]:
        if tok and set(tok) <= set(";&|()"):
            command(segment)
            segment = []
        else:
            segment.append(tok)  # (redirections come after the command word, which is all we read)
    candidates = [os.path.relpath(c, cwd) if os.path.isabs(c) and c.startswith(cwd.rstrip("/") + "/") else c
                  for c in candidates]
    for c in candidates:
        if os.path.isfile(os.path.join(cwd, c)):
            return c
    return next((c for c in candidates if "/" in c), candidates[0] if candidates else None)


def _build_tree(project: str, target: str | None, marker: str = "CMakeCache.txt") -> str | None:
    """The build tree holding ``target``: the directory with ``marker`` (CMakeCache.txt: CMake's;
    meson-info: Meson's), searched from the target's directory up to ``project``, relative to the
    current directory, or None.  With either, ``CC=...`` does nothing once the tree is set up, so
    the rebuild hint differs."""
    d = os.path.dirname(os.path.abspath(os.path.join(project, target or ".")))
    top = os.path.abspath(project)
    while True:
        if os.path.exists(os.path.join(d, marker)):
            return os.path.relpath(d)
        if d == top or os.path.dirname(d) == d or not d.startswith(top):
            return None
        d = os.path.dirname(d)


@cli.command()
@click.option("--budget", type=int, help="Trials to spend (default: the config's budget).")
@click.option("--seed", type=int, help="Random seed of the search.")
@click.option("--proposer", type=click.Choice(["offline", "random", "llm", "auto"]), help="Who proposes pipelines.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the session report as JSON.")
def tune(budget, seed, proposer, quiet, as_json):
    """Run a tuning session on the configured target."""
    from .tuning.session import Session
    project = _project_or_fail()
    settings = cfg.load(project, {"budget": budget, "seed": seed, "proposer": proposer})
    try:
        report = Session(project, settings, progress=not quiet).run()
    except KeyboardInterrupt:
        raise AutopassError("session interrupted; your binary and objects are as they were") from None
    if as_json:
        click.echo(json.dumps(report, indent=1, default=str))
        return
    with open(report["files"]["summary"], encoding="utf-8") as f:
        click.echo(f.read(), nl=False)
    click.echo(f"report: {report['files']['json']}")
    if report.get("winner"):
        tree = _build_tree(project, settings.get("target"))
        meson = _build_tree(project, settings.get("target"), "meson-info")
        click.echo("rebuild to use the tuned pipelines: e.g. "
                   + (f"meson compile -C {meson} --clean && meson compile -C {meson}" if meson else
                      f"cmake --build {tree} --clean-first" if tree else "make clean && make CC=autopass-cc"))


def _settle() -> None:
    """Let compiles the compile server reported done finish storing their results and counters
    (objcache.wait_saves), so what follows sees them."""
    from .objcache import wait_saves
    from .store import OBJECTS_DIR
    wait_saves(os.path.join(cfg.cache_dir(), OBJECTS_DIR))


def _group_counters(counters: dict) -> dict:
    hits = counters.get("hit", 0)
    stale = counters.get("hit:stale", 0)
    passthrough = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("passthrough:")}
    errors = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("error:")}
    uncacheable = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("uncacheable:")}
    return {"hits": hits + stale, "stale_hits": stale, "misses": counters.get("miss", 0),
            "object_hits": counters.get("object_hit", 0), "object_misses": counters.get("object_miss", 0),
            "object_uncacheable": counters.get("object_uncacheable", 0), "object_uncacheable_by_reason": uncacheable,
            "passthrough": sum(passthrough.values()), "passthrough_by_reason": passthrough,
            "internal_errors": sum(errors.values()), "errors_by_kind": errors, "links": counters.get("links", 0),
            "one_step_links": counters.get("one_step_links", 0),
            "multi_source_splits": counters.get("multi_source_splits", 0),
            "served_by_server": counters.get("served", 0), "compiles_forked": counters.get("forked", 0)}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--zero", is_flag=True, help="Reset the counters (tuned pipelines are kept).")
def stats(as_json, zero):
    """Cache statistics: hits, misses, pass-throughs by reason, errors, tuned TUs (like ccache -s)."""
    from .store import StoreUnavailable, open_store, open_store_readonly
    _settle()
    try:
        store = open_store()
    except StoreUnavailable:
        if zero:
            raise
        store = open_store_readonly()   # a full or read-only cache can still be read
    try:
        if zero:
            store.zero_counters()
        data = _group_counters(store.counters())
        entries = list(store.entries())
        won = [e for e in entries if not _is_baseline(e)]
        speedups = [e["provenance"]["speedup"] for e in won if e.get("provenance", {}).get("speedup")]
        data.update({"cache_dir": store.directory, "cache_bytes": store.volume(), "tuned_tus": len(entries),
                     "objects_cached": store.object_entries(),
                     "tuned_tus_faster": len(won),
                     "speedups": sorted(set(round(s, 4) for s in speedups))})
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(data, indent=1, sort_keys=True))
        return
    rows = [("cache directory", data["cache_dir"]),
            ("tuned-pipeline cache hits",
             f"{data['hits']}" + (f" ({data['stale_hits']} stale)" if data["stale_hits"] else "")),
            # (a miss compiles a TU no session had examined then -- e.g. one the target does not
            # link, as libjpeg-turbo's 431 of 558 -- with the user's flags)
            ("tuned-pipeline cache misses", f"{data['misses']} (compiles of TUs no session had examined: your flags)"
             if data["misses"] else 0),
            ("object cache hits", data["object_hits"]), ("object cache misses", data["object_misses"]),
            ("  not cacheable", data["object_uncacheable"])]
    rows += [(f"    {k}", v) for k, v in sorted(data["object_uncacheable_by_reason"].items(), key=lambda kv: -kv[1])]
    rows += [("objects cached", data["objects_cached"]), ("pass-throughs", data["passthrough"])]
    rows += [(f"  {k}", v) for k, v in sorted(data["passthrough_by_reason"].items(), key=lambda kv: -kv[1])]
    rows += [("multi-source compiles split", data["multi_source_splits"]),
             ("links recorded", data["links"]), ("  one-step builds split", data["one_step_links"]),
             ("calls served by the compile server", data["served_by_server"]),
             ("  compiles started by a fork server", data["compiles_forked"]),
             ("internal errors", data["internal_errors"])]
    rows += [(f"  {k}", v) for k, v in sorted(data["errors_by_kind"].items())]
    rows += [("TUs examined by sessions", f"{data['tuned_tus']} ({data['tuned_tus_faster']} with a faster pipeline, "
                                          f"{data['tuned_tus'] - data['tuned_tus_faster']} keep your flags)"),
             ("session speedups", ", ".join(f"{s:.3f}x" for s in data["speedups"]) or "-"),
             ("cache size", f"{data['cache_bytes'] / 1024:.1f} KiB")]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        click.echo(f"{name:<{width}}  {value}")


def _is_baseline(entry: dict) -> bool:
    from .pipeline import Pipeline
    try:
        return Pipeline.from_dict(entry["pipeline"]).is_baseline
    except Exception:
        return True


def _target_objects(project: str, settings: dict) -> set:
    """Objects (absolute paths) the configured target links, directly, from its static archives
    or from the build tree's shared libraries it links (tuning/program.py); empty when the build
    log cannot say."""
    from .tuning.program import Program
    target = os.path.abspath(os.path.join(project, settings["target"]))
    try:
        prog = Program(project, target, os.path.join(project, ".autopass", "unused-scratch"), find_moved=False)
    except Exception:
        return set()
    return {t.output for t in prog.tus}


@cli.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--evidence/--no-evidence", default=True, help="Show the TU's optimization evidence summary.")
@click.option("--output", "output", metavar="OBJ",
              help="Of several compiles of SOURCE (libtool's x.o and .libs/x.o), the one writing OBJ "
                   "(default: one the target links, then the latest one with a tuned entry, else the latest).")
def explain(source, as_json, evidence, output):
    """Which pipeline SOURCE gets, why, and with what evidence."""
    from . import buildlog, cachekey
    from .invocation import Invocation, classify_record
    from .pipeline import Pipeline
    from .store import open_store
    from .toolchain import compiler_identity, host_cpu
    from .wrapper import lookup
    project = _project_or_fail()
    settings = cfg.load(project)
    path = os.path.abspath(source)
    compiles, _ = buildlog.latest(buildlog.read(project))
    recs = sorted((r for r in compiles.values() if r["source"] == path), key=lambda r: r.get("time", 0))
    if not recs:
        raise AutopassError(f"{source} was not compiled through autopass-cc in this project; build it with "
                            "CC=autopass-cc first")
    if output:
        want = os.path.abspath(output)
        recs_to_try = [r for r in recs if r["output"] == want][-1:]
        if not recs_to_try:
            raise AutopassError(f"no compile of {source} writes {output}; its compiles write: "
                                + ", ".join(os.path.relpath(r["output"]) for r in recs))
    else:
        # Several compiles of one source (libtool's x.o and .libs/x.o; CMake's shared and static
        # libraries): one that goes into the configured target first (seen on libjpeg-turbo: the
        # latest was libturbojpeg's, which the target does not link), then the latest one a
        # session stored a pipeline for, else the latest.
        recs_to_try = list(reversed(recs))
        if len(recs) > 1 and settings.get("target"):
            linked = _target_objects(project, settings)
            recs_to_try.sort(key=lambda r: r["output"] not in linked)

    def look(rec: dict):
        inv = classify_record(rec)
        if not isinstance(inv, Invocation):
            raise AutopassError(f"the recorded compile of {source} is not interceptable ({inv.reason})")
        ident = compiler_identity(rec["compiler"])
        pre = subprocess.run([rec["compiler"]] + cachekey.preprocess_args(inv), cwd=rec["cwd"], capture_output=True)
        if pre.returncode != 0:
            raise AutopassError(f"{source} does not preprocess now: {pre.stderr.decode(errors='replace').strip()[:200]}")
        key = cachekey.compute(inv, ident, rec["cwd"], pre.stdout,
                               native_cpu=host_cpu(rec["compiler"]) if inv.uses_native else None, project=project)
        store = open_store()
        try:
            return (rec, key, *lookup(store, key, settings), store.get_by_tu(key.tu_id))
        finally:
            store.close()
    found = None
    for i, rec in enumerate(recs_to_try):
        try:
            res = look(rec)
        except AutopassError:
            if found is None and i == len(recs_to_try) - 1:
                raise
            continue
        found = found or res                      # the latest compile, if none has an entry
        if res[3] != "miss":
            found = res
            break
    rec, key, pipeline, status, entry, stale_entry = found
    others = [os.path.relpath(r["output"]) for r in recs if r is not rec]
    out = {"source": os.path.relpath(path, project), "compile": {"cwd": rec["cwd"], "compiler": rec["compiler"],
                                                                   "args": rec["args"], "output": rec["output"]},
           "other_compiles": others,
           "key": key.digest, "tu_id": key.tu_id, "material": key.material, "lookup": status,
           "pipeline": (pipeline or Pipeline()).describe(), "provenance": (entry or {}).get("provenance")}
    if pipeline is not None and pipeline.profile is not None:
        from .pipeline import profile_intact, profile_path
        out["profile"] = {"path": profile_path(pipeline.profile), "intact": profile_intact(pipeline.profile)}
    if status in ("miss", "stale") and stale_entry:
        old = stale_entry.get("material", {})
        out["differs_from_tuned"] = sorted(k for k in set(old) | set(key.material) if old.get(k) != key.material.get(k))
    if evidence:
        try:
            from .tuning.evidence import collect, summarize_for_prompt
            with tempfile.TemporaryDirectory() as d:
                ev = collect(rec["compiler"], rec["args"], rec["cwd"], pipeline or Pipeline(), d)
            out["evidence"] = summarize_for_prompt(ev, [], 2500)
        except Exception as e:
            out["evidence"] = f"(no evidence: {type(e).__name__}: {e})"
    if as_json:
        click.echo(json.dumps(out, indent=1, default=str))
        return
    click.echo(f"TU            {out['source']} -> {os.path.relpath(rec['output'])}")
    if others:
        click.echo(f"  also compiled to {', '.join(others)} (explain --output OBJ shows that compile)")
    click.echo(f"cache key     {key.digest}  (TU id {key.tu_id})")
    m = key.material
    click.echo(f"  compiler    {m['compiler']['version']} sha256 {m['compiler']['sha256'][:16]}… target {m['compiler']['target']}")
    click.echo(f"  language    {m['lang']}; code-generation args (warnings left out): "
               f"{' '.join(m['codegen_args']) or '(none)'}")
    click.echo(f"  preprocessed sha256 {m['preprocessed_sha256'][:16]}…; cwd {m['cwd'] or '(not in key: no -g)'}; schema {m['schema']}")
    verdict = {"hit": "HIT: a tuned entry matches exactly", "stale": "STALE HIT: tuned for an earlier version of this TU",
               "miss": "MISS: no tuned entry (the user's flags are used)",
               "refused": "REFUSED: the stored pipeline is not allowed by the current settings"}[status]
    click.echo(f"lookup        {verdict}")
    if out.get("differs_from_tuned"):
        click.echo(f"  differs from the tuned entry in: {', '.join(out['differs_from_tuned'])}")
    click.echo(f"pipeline      {' '.join(out['pipeline'])}")
    if out.get("profile"):
        state = "" if out["profile"]["intact"] else " -- MISSING or damaged: the user's flags are used"
        click.echo(f"  profile     {out['profile']['path']}{state}")
    prov = out["provenance"]
    if prov:
        from .tuning.report import ci_text
        sp = (f"{prov['speedup']:.3f}x (CI {ci_text(prov['speedup_ci'][0], prov['speedup_ci'][1])})"
              if prov.get("speedup") else "-")
        click.echo(f"provenance    session {prov.get('session')} on {prov.get('date')}: {prov.get('status')}; "
                   f"program speedup {sp}; proposer {prov.get('proposer')}, budget {prov.get('budget')}")
    if evidence:
        click.echo("evidence:")
        for line in str(out["evidence"]).splitlines():
            click.echo("  " + line)


@cli.group()
def cache():
    """Manage the cache of tuned pipelines."""


@cache.command("clear")
@click.option("--keep-stats", is_flag=True, help="Keep the statistics counters.")
def cache_clear(keep_stats):
    """Remove every tuned pipeline (and the counters)."""
    from .store import open_store
    _settle()
    store = open_store()
    try:
        n = store.clear(stats_too=not keep_stats)
    finally:
        store.close()
    click.echo(f"removed {n} entries from {cfg.cache_dir()}")


@cache.command("dir")
def cache_dir_cmd():
    """Print the cache directory."""
    click.echo(cfg.cache_dir())


@cli.group()
def server():
    """The compile server behind the autopass-cc client (started by the first compile, stops
    after AUTOPASS_SERVER_IDLE seconds idle, default 600; AUTOPASS_SERVER=0 turns it off)."""


@server.command("status")
def server_status():
    """List the running compile servers and their compiler fork servers."""
    from .server import default_dir, running
    found = running()
    if not found:
        d = default_dir()
        click.echo(f"no compile server running (socket directory {d})")
        try:
            st = os.lstat(d)
        except OSError:
            return
        # client.c uses a server only in a private directory of ours (others could replace its sockets).
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            click.echo(f"  {d} is not a private directory of this user (mode {stat.S_IMODE(st.st_mode):04o}, "
                       f"uid {st.st_uid}): compiles run without the server; fix with chmod 700 {d}")
    from .forkserver import running as fork_servers
    for s in found:
        click.echo(f"pid {s['pid']}  {s['socket']}")
        for f in fork_servers(s["pid"]):
            click.echo(f"  fork server pid {f['pid']}  {f['compiler']}")


@server.command("stop")
def server_stop():
    """Stop the running compile servers (calls in flight finish first)."""
    from .server import stop
    click.echo(f"stopped {stop()} compile server(s)")


def _scripts_dir() -> str:
    own = shutil.which("autopass-cc")
    cand = os.path.join(sysconfig.get_path("scripts"), "autopass-cc")
    return cand if os.path.exists(cand) else (own or "autopass-cc")


@cli.command()
@click.option("--dir", "workdir", type=click.Path(), help="Where to build the example (default: a new temp dir).")
@click.option("--budget", type=int, default=12, show_default=True, help="Trials of the tuning session.")
@click.option("--proposer", type=click.Choice(["offline", "random", "llm", "auto"]), default="auto", show_default=True)
@click.option("--example", default="demo", show_default=True, help="Which example under examples/.")
@click.option("--local-llm", is_flag=True, help="Start the bundled local model server and use the LLM proposer.")
def demo(workdir, budget, proposer, example, local_llm):
    """The main job on a bundled example: build, tune, rebuild from the cache, measure the speedup."""
    from .tuning.demo import run_demo
    run_demo(workdir=workdir, budget=budget, proposer=proposer, example=example, wrapper=_scripts_dir(),
             local_llm=local_llm, echo=click.echo)


@cli.command()
def doctor():
    """Check the compiler, LLVM tools, cache, project settings and the LLM endpoint."""
    from .toolchain import compiler_identity, find_real_compiler, llvm_tool
    ok = True

    def row(name, good, detail):
        nonlocal ok
        ok &= bool(good)
        click.echo(f"[{'ok' if good else 'FAIL'}] {name}: {detail}")
    try:
        cc = find_real_compiler(False)
        ident = compiler_identity(cc)
        row("compiler", ident.get("is_clang"), f"{cc} ({ident.get('version')})")
    except Exception as e:
        row("compiler", False, str(e))
    for tool in ("opt", "llvm-profdata", "llvm-ar", "llvm-nm"):
        try:
            row(tool, True, llvm_tool(tool))
        except Exception as e:
            row(tool, False, str(e))
    row("valgrind (profiling)", shutil.which("valgrind") is not None, shutil.which("valgrind") or "not found; hot spots fall back to all TUs")
    d = cfg.cache_dir()
    try:
        from .store import open_store
        s = open_store()
        s.incr("doctor", 0)
        s.close()
        row("cache", True, d)
    except Exception as e:
        row("cache", False, str(e))
    project = cfg.find_project()
    settings = None
    try:
        settings = cfg.load(project)
        row("settings", True, cfg.project_config_path(project) if project else "no project here (defaults)")
    except AutopassError as e:
        row("settings", False, str(e))
    llm = (settings or {}).get("llm") or {}
    if llm.get("base_url") or os.environ.get("OPENAI_BASE_URL"):
        try:
            from .tuning.proposers.llm import check_endpoint
            for name, good, detail in check_endpoint(settings):
                row(f"llm {name}", good, detail)
        except ImportError as e:
            row("llm", False, f"LLM proposer unavailable: {e}")
    else:
        click.echo("[--] llm: no endpoint configured ([llm] base_url or OPENAI_BASE_URL); the offline proposer is used")
    if not ok:
        raise SystemExit(1)


@cli.command("help")
@click.pass_context
def help_cmd(ctx):
    """Show this help."""
    click.echo(cli.get_help(ctx.parent))


def main(args: list[str]) -> int:
    """Run a subcommand; returns the exit status."""
    try:
        cli.main(args=args, prog_name="autopass-cc", standalone_mode=False)
        return 0
    except click.exceptions.Abort:
        click.echo("autopass-cc: aborted", err=True)
        return 130
    except click.exceptions.ClickException as e:
        e.show()
        return e.exit_code
    except AutopassError as e:
        click.echo(f"autopass-cc: {e}", err=True)
        return 1
    except SystemExit as e:
        return int(e.code or 0)
    except KeyboardInterrupt:
        click.echo("autopass-cc: interrupted", err=True)
        return 130
