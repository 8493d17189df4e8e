"""Session report: ``session.json`` (every trial: pipeline, times, verdict, diagnosis), a short
human-readable ``summary.txt``, and ``speedup.png`` (speedup over trials; matplotlib, Agg backend).
"""

from __future__ import annotations

import json
import os


def ci_text(lo: float, hi: float) -> str:
    """A confidence interval as ``"lo-hi"`` with 3 decimals, except that a bound which would print
    as 1.000 without being 1 gets as many more (up to 6) as it takes not to: an interval that
    excludes 1 must not read as one that includes it (QuickJS's report showed "CI 1.000-1.042"
    for a lower bound of 1.0003)."""
    def one(x: float) -> str:
        for digits in range(3, 7):
            text = f"{x:.{digits}f}"
            if x == 1.0 or text.rstrip("0") != "1.":
                return text
        return text
    return f"{one(lo)}-{one(hi)}"


def summary_text(report: dict) -> str:
    """A few lines a user reads after ``autopass-cc tune``."""
    lines = [f"autopass-cc session {report['session']} ({report.get('proposer')} proposer, "
             f"budget {report['budget']} trials, {report.get('seconds', '?')} s)"]
    base = report.get("baseline", {}).get("seconds")
    if base is not None:
        lines.append(f"baseline: {base:.3f} s ({report['metric']} time) of `{report['run']}`")
    project = report.get("project")

    def rel(path: str) -> str:  # as the progress lines name them (lib/lz4hc.c, not lz4hc.c)
        return os.path.relpath(path, project) if project and os.path.isabs(path) else path
    hot = [f"{rel(t['source'])} {t['weight']:.0%}" for t in report.get("tus", []) if t.get("weight")]
    lines.append("hot TUs: " + (", ".join(hot) if hot else "no profile; tuned " + ", ".join(
        rel(t["source"]) for t in report.get("tus", []))))
    if report.get("pgo"):
        g = report["pgo"]
        lines.append(f"instrumentation profile: {g['bytes']} bytes from {g['raw_files']} process(es), "
                     f"run in {g['seconds']:.2f} s; candidates may use it (profile={g['digest'][:12]})")
    counts: dict = {}
    for t in report.get("trials", []):
        counts[t["verdict"]] = counts.get(t["verdict"], 0) + 1
    lines.append("trials: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else "trials: none")
    conf = report.get("confirmation") or {}
    rejected = bool(conf) and not report.get("winner")
    # (a trial accepted after the one whose incumbent held on confirmation was dropped: session._confirm)
    last = report.get("confirmed_trial")
    for t in report.get("trials", []):
        if t["accepted"]:
            kept = rejected or (last is not None and t["trial"] > last)
            lines.append(f"  {'kept during the search' if kept else 'accepted'}: trial {t['trial']}: "
                         f"{', '.join(t['edits'])} -> {t['ratio']:.3f}x (CI {ci_text(*t['ci'][:2])}) "
                         f"[{t['agent']}]")
    if report.get("winner"):
        ci = report.get("speedup_ci") or [float("nan")] * 2
        lines.append(f"speedup over the user's flags: {report['speedup']:.3f}x (CI {ci_text(ci[0], ci[1])}, "
                     f"confirmed with fresh rounds)")
    else:
        lines.append("speedup over the user's flags: none significant; the user's flags are kept")
    for n in report.get("notes", []):
        lines.append("note: " + n)
    stored = report.get("stored") or []
    tuned = [s for s in stored if s["status"] == "won"]
    if stored:
        lines.append(f"cached: {len(tuned)} tuned pipeline(s), {len(stored) - len(tuned)} TU(s) keep the user's flags")
        for s in tuned:
            lines.append(f"  {s['source']}: {' '.join(s['pipeline'])}")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: str) -> str | None:
    """Speedup of each trial over the incumbent of its time, and the running product of accepted
    speedups (an estimate of the speedup over the baseline), against the trial number; then the
    confirmation's ratio (fresh rounds against the baseline), labelled "not confirmed" when it did
    not hold.  Returns the path, or None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    trials = report.get("trials", [])
    xs, ys, colors, best, running = [], [], [], [], 1.0
    for t in trials:
        if t["ratio"] is not None:
            xs.append(t["trial"])
            ys.append(t["ratio"])
            colors.append("tab:green" if t["accepted"] else "tab:gray")
        if t["accepted"]:
            running *= t["ratio"]
        best.append((t["trial"], running))
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.axhline(1.0, color="black", lw=0.8)
    if xs:
        ax.scatter(xs, ys, c=colors, s=18, label="trial vs incumbent")
    if best:
        ax.step([b[0] for b in best], [b[1] for b in best], where="post", color="tab:blue", label="accepted (product)")
    conf = report.get("confirmation") or {}
    if report.get("winner"):
        ax.axhline(report["speedup"], color="tab:red", ls="--", lw=1, label=f"confirmed {report['speedup']:.3f}x")
    elif conf.get("ratio") is not None:
        # The search kept it, fresh rounds did not: nothing was stored (session.py, step 5).
        ax.axhline(conf["ratio"], color="tab:red", ls=":", lw=1,
                   label=f"not confirmed: {conf['ratio']:.3f}x, nothing stored")
    ax.set_xlabel("trial")
    ax.set_ylabel("speedup (ratio of medians)")
    ax.set_title(f"autopass-cc session {report['session']}")
    if xs or best or report.get("winner") or conf:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(report: dict, directory: str) -> dict:
    """Write session.json, summary.txt and speedup.png into ``directory``; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    files = {"json": os.path.join(directory, "session.json"), "summary": os.path.join(directory, "summary.txt")}
    try:
        png = plot(report, os.path.join(directory, "speedup.png"))
        if png:
            files["plot"] = png
    except Exception:
        pass  # a plotting problem must not lose the session record
    report = {**report, "files": files}
    with open(files["json"], "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, default=str)
    with open(files["summary"], "w", encoding="utf-8") as f:
        f.write(summary_text(report))
    latest = os.path.join(os.path.dirname(directory), "latest")
    try:
        if os.path.islink(latest) or os.path.exists(latest):
            os.unlink(latest)
        os.symlink(os.path.basename(directory), latest)
    except OSError:
        pass
    return files
