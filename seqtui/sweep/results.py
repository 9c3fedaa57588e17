"""A sweep's results: one row per trial from the study and the trial's run directory, ranked
(finished by best validation perplexity, then pruned, running/stopped, failed); a rich table or JSON.

Works at any time, including while the sweep runs (the study is read, never written).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

STATUS_ORDER = {"finished": 0, "pruned": 1, "running": 2, "stopped": 2, "waiting": 3, "failed": 4}


def trial_timing(events: list[dict]) -> tuple[float | None, float | None]:
    """(mean tokens/s of the progress events, training seconds summed over every start…last
    event segment — a resumed trial's pause does not count)."""
    rates = [e["tokens_per_s"] for e in events if e.get("type") == "progress"
             and isinstance(e.get("tokens_per_s"), (int, float))]
    seconds, t0, last = 0.0, None, None
    for e in events:
        t = e.get("time")
        if not isinstance(t, (int, float)):
            continue
        if e.get("type") == "start":
            if t0 is not None and last is not None:
                seconds += last - t0
            t0 = t
        last = t
    if t0 is not None and last is not None:
        seconds += last - t0
    return (sum(rates) / len(rates) if rates else None), (seconds if t0 is not None else None)


def trial_row(trial) -> dict[str, Any]:
    """One trial as a plain dict (FrozenTrial in; reads its run directory if it is here)."""
    from seqtui.engine.rundir import RunDir

    attrs = trial.user_attrs
    state = trial.state.name
    row: dict[str, Any] = {"trial": trial.number, "run": attrs.get("run"), "path": attrs.get("path"),
                           "params": dict(trial.params), "status": None, "best_val_ppl": None,
                           "tokens_per_s": attrs.get("tokens_per_s"), "seconds": attrs.get("seconds"),
                           "step": None, "total_steps": None, "reason": attrs.get("reason"),
                           "error": attrs.get("error"), "worker": attrs.get("worker")}
    info = None
    path = attrs.get("path")
    if path and RunDir(path).is_run():
        rd = RunDir(path)
        info = rd.info()
        tps, seconds = trial_timing(rd.events())
        row["tokens_per_s"] = tps if tps is not None else row["tokens_per_s"]
        row["seconds"] = seconds if seconds is not None else row["seconds"]
        row["step"], row["total_steps"] = info.last_step, info.total_steps
        row["best_val_ppl"] = info.best_val_ppl
        if row["reason"] is None and info.reason:
            row["reason"] = info.reason
    if state == "COMPLETE":
        row["status"] = "finished"
        row["best_val_ppl"] = trial.value
    elif state == "PRUNED":
        row["status"] = "pruned"
        if row["best_val_ppl"] is None and trial.intermediate_values:
            row["best_val_ppl"] = min(trial.intermediate_values.values())
    elif state == "FAIL":
        row["status"] = "failed"
    elif info is not None:
        row["status"] = "running" if info.status == "running" else "stopped"
    else:
        row["status"] = "waiting"
    if isinstance(row["best_val_ppl"], float) and not math.isfinite(row["best_val_ppl"]):
        row["best_val_ppl"] = None
    return row


def rows(study) -> list[dict[str, Any]]:
    """Every trial, ranked."""
    out = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    out.sort(key=lambda r: (STATUS_ORDER.get(r["status"], 5),
                            r["best_val_ppl"] if r["best_val_ppl"] is not None else math.inf,
                            r["trial"]))
    for rank, r in enumerate(out, 1):
        r["rank"] = rank
    return out


def summary(study) -> dict[str, Any]:
    """The study's settings, counts per status and the ranked rows (for --json)."""
    from seqtui.sweep.study import ATTR

    ranked = rows(study)
    counts: dict[str, int] = {}
    for r in ranked:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    meta = study.user_attrs.get(ATTR, {})
    best = next((r for r in ranked if r["status"] == "finished"), None)
    return {"sweep": study.study_name, "search": meta.get("search"), "space": meta.get("space"),
            "trials": meta.get("trials"), "counts": counts,
            "best": None if best is None else {"trial": best["trial"], "run": best["run"],
                                               "params": best["params"],
                                               "best_val_ppl": best["best_val_ppl"]},
            "rows": ranked}


def print_table(data: dict[str, Any], console=None) -> None:
    """The ranked table (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(highlight=False)
    ranked = data["rows"]
    names: list[str] = []
    for r in ranked:
        for k in r["params"]:
            if k not in names:
                names.append(k)
    table = Table(box=None, pad_edge=False, title=f"sweep {data['sweep']} ({data.get('search')})",
                  title_justify="left")
    for col in ("#", "TRIAL", *(n.upper() for n in names), "BEST VAL PPL", "TOK/S", "WALL",
                "STEP", "STATUS", "RUN"):
        right = col in ("#", "TRIAL", "BEST VAL PPL", "TOK/S", "WALL", "STEP")
        table.add_column(col, justify="right" if right else "left")
    for r in ranked:
        step = "—" if r["step"] is None else f"{r['step']}" + (
            f"/{r['total_steps']}" if r["total_steps"] else "")
        status = _status(r["status"])
        if r["status"] == "failed" and r.get("error"):
            status += f" [dim]{_short(r['error'], 40)}[/]"
        table.add_row(str(r["rank"]), str(r["trial"]),
                      *(_param(r["params"].get(n, "—")) for n in names),
                      _num(r["best_val_ppl"]), _rate(r["tokens_per_s"]), _secs(r["seconds"]), step,
                      status, r["run"] or "—")
    console.print(table)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(data["counts"].items(),
                                                      key=lambda kv: STATUS_ORDER.get(kv[0], 9)))
    console.print(f"{len(ranked)} trials: {counts or 'none yet'}")
    if data.get("best"):
        b = data["best"]
        params = " ".join(f"{k}={_param(v)}" for k, v in b["params"].items())
        console.print(f"best: trial {b['trial']} ({b['run']}), val ppl {_num(b['best_val_ppl'])}:  "
                      f"{params}")


def _status(status: str) -> str:
    color = {"finished": "blue", "pruned": "magenta", "failed": "red", "running": "green"}.get(
        status, "yellow")
    return f"[{color}]{status}[/]"


def _param(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "none" if v is None else str(v)


def _num(x) -> str:
    if x is None:
        return "—"
    return f"{x:.4g}" if abs(x) >= 1e6 else f"{x:.3f}"


def _rate(x) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _secs(x) -> str:
    return "—" if x is None else f"{x:.1f}s"


def _short(text: str, width: int) -> str:
    from rich.markup import escape

    text = text if len(text) <= width else text[: width - 1] + "…"
    return escape(text)


def run_paths(study) -> list[Path]:
    return [Path(t.user_attrs["path"]) for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("path")]
