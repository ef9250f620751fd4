"""Shared matplotlib pictures (timeline, cluster graph) as deterministic PNG bytes."""

from __future__ import annotations

import io
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["timeline_png", "cluster_graph_png", "LAYER_COLORS", "DPI",
           "runs_bar_png", "traffic_png", "STATUS_COLORS"]

#: resolution every picture is rendered at (fixed so the bytes are reproducible)
DPI = 100

#: one colour per evidence layer, shared by the site, the pictures and the reports
LAYER_COLORS: dict[str, str] = {
    "network": "#1f77b4",   # blue
    "payment": "#d62728",   # red
    "prompt": "#2ca02c",    # green
    "timing": "#9467bd",    # purple
}
_OTHER_COLOR = "#7f7f7f"
_ACCOUNT_COLOR = "#ff7f0e"


def _figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas, without touching pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    """Render a figure to PNG bytes with no metadata that varies between runs or versions."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _text(value, limit: int = 80) -> str:
    """Plain text for a label: stringified, shortened, with matplotlib mathtext disabled."""
    s = "" if value is None else str(value)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def timeline_png(activity_df: pd.DataFrame, *, title: str | None = None,
                 width: float = 8.0, height: float = 3.0) -> bytes:
    """Draw a cluster's activity over time: requests per hour (filled) and sign-ups (line).

    The time axis covers the hours with requests (sign-ups outside that window are counted in
    the legend); windows longer than 60 days are drawn per day instead of per hour.

    Parameters
    ----------
    activity_df : pandas.DataFrame
        Rows of ``cluster_activity.parquet`` (``hour``, ``requests``, ``signups``; a
        ``cluster_id`` column is ignored, so pass one cluster's rows). ``hour`` may be a
        timestamp column or ISO 8601 text. Hours without activity may be absent.
    title : str, optional
        Title drawn above the picture (shown as plain text).
    width, height : float
        Size in inches (rendered at :data:`DPI`).

    Returns
    -------
    bytes
        A PNG image; the same input gives the same bytes.

    Examples
    --------
    >>> df = pd.DataFrame({"hour": pd.to_datetime(["2026-11-02T10:00Z", "2026-11-02T12:00Z"]),
    ...                    "requests": [5, 9], "signups": [2, 0]})
    >>> timeline_png(df, title="C0001")[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    import matplotlib.dates as mdates

    fig = _figure(width, height)
    fig.subplots_adjust(left=0.08, right=0.92, bottom=0.2, top=0.88)
    ax = fig.add_subplot(1, 1, 1)
    df = activity_df if activity_df is not None else pd.DataFrame()
    if len(df) and "hour" in df.columns:
        hours = pd.to_datetime(df["hour"], utc=True).dt.tz_localize(None)
        frame = pd.DataFrame({
            "hour": hours,
            "requests": pd.to_numeric(df.get("requests", 0), errors="coerce").fillna(0).to_numpy(),
            "signups": pd.to_numeric(df.get("signups", 0), errors="coerce").fillna(0).to_numpy(),
        }).groupby("hour", sort=True).sum()
        # show the window in which requests were made (sign-ups of old accounts can be years
        # earlier); sign-ups outside it are counted in the legend
        active = frame.index[frame["requests"] > 0]
        if len(active):
            lo = active[0] - pd.Timedelta(hours=12)
            hi = active[-1] + pd.Timedelta(hours=12)
        else:
            lo, hi = frame.index[0], frame.index[-1]
        outside = int(frame.loc[(frame.index < lo) | (frame.index > hi), "signups"].sum())
        frame = frame.loc[(frame.index >= lo) & (frame.index <= hi)]
        daily = (hi - lo) > pd.Timedelta(days=60)
        unit = "day" if daily else "hour"
        if daily:
            frame = frame.resample("D").sum()
            lo, hi = lo.floor("D"), hi.floor("D")
        # fill in silent periods so the step outline drops to zero between bursts
        step = "D" if daily else "h"
        full = pd.date_range(lo.floor(step), hi.floor(step) + pd.Timedelta(1, unit=step), freq=step)
        frame = frame.reindex(full, fill_value=0)
        x = mdates.date2num(frame.index.to_pydatetime())
        ax.fill_between(x, frame["requests"].to_numpy(), step="post", color=LAYER_COLORS["network"],
                        alpha=0.85, linewidth=0, label=f"requests per {unit}")
        ax.set_ylim(bottom=0)
        ax.set_xlim(x[0], x[-1])
        ax.set_ylabel(f"requests / {unit}")
        ax2 = ax.twinx()
        ax2.step(x, frame["signups"].to_numpy(), where="post", color=_ACCOUNT_COLOR, linewidth=1.2,
                 label=f"sign-ups per {unit}")
        ax2.set_ylabel(f"sign-ups / {unit}")
        ax2.set_ylim(bottom=0)
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        signup_label = f"sign-ups per {unit}" + (f" ({outside} outside this window)" if outside else "")
        ax.legend(handles, [f"requests per {unit}", signup_label], loc="upper left", fontsize=8,
                  frameon=False)
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("time (UTC)")
    else:
        ax.text(0.5, 0.5, "no activity recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        ax.set_title(_text(title), fontsize=10)
    return _png(fig)


def cluster_graph_png(links_df: pd.DataFrame, *, members: Iterable[str] | None = None,
                      title: str | None = None, max_nodes: int = 400, seed: int = 0,
                      layer_colors: Mapping[str, str] | None = None,
                      width: float = 7.0, height: float = 7.0) -> bytes:
    """Draw the account–account links of one cluster, edges coloured by evidence layer.

    Parameters
    ----------
    links_df : pandas.DataFrame
        Rows of ``links.parquet`` (``account_a``, ``account_b``, ``layer``, ``weight``);
        pass the links among one cluster's members.
    members : iterable of str, optional
        The cluster's accounts; members without links are drawn as isolated dots.
        Defaults to the accounts that appear in ``links_df``.
    title : str, optional
        Title drawn above the picture (plain text).
    max_nodes : int
        Above this many accounts, only the ``max_nodes`` accounts with the largest total
        link weight (ties broken by id) are drawn and the title says so.
    seed : int
        Seed of the (deterministic) igraph Fruchterman–Reingold layout.
    layer_colors : mapping, optional
        Colour per layer; defaults to :data:`LAYER_COLORS`.
    width, height : float
        Size in inches.

    Returns
    -------
    bytes
        A PNG image; the same input gives the same bytes.
    """
    import igraph as ig

    colors = dict(LAYER_COLORS if layer_colors is None else layer_colors)
    links = links_df if links_df is not None else pd.DataFrame(columns=["account_a", "account_b", "layer", "weight"])
    links = links[["account_a", "account_b", "layer", "weight"]].astype(
        {"account_a": str, "account_b": str, "layer": str, "weight": float})
    if members is None:
        nodes = sorted(set(links["account_a"]) | set(links["account_b"]))
    else:
        nodes = sorted({str(m) for m in members})
    n_total = len(nodes)
    if n_total > max_nodes:
        strength = pd.concat([links[["account_a", "weight"]].rename(columns={"account_a": "n"}),
                              links[["account_b", "weight"]].rename(columns={"account_b": "n"})])
        strength = strength.groupby("n")["weight"].sum().reindex(nodes, fill_value=0.0)
        order = sorted(nodes, key=lambda n: (-strength[n], n))
        nodes = sorted(order[:max_nodes])
    index = {n: i for i, n in enumerate(nodes)}
    links = links[links["account_a"].isin(index) & links["account_b"].isin(index)]
    links = links.sort_values(["account_a", "account_b", "layer"], kind="mergesort")

    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    if nodes:
        pair = links.groupby(["account_a", "account_b"], sort=True)["weight"].sum()
        g = ig.Graph(n=len(nodes), edges=[(index[a], index[b]) for a, b in pair.index])
        g.es["weight"] = [float(w) for w in pair.to_numpy()]
        from exporters.site.layout import layout_positions

        pos = layout_positions(g, seed=seed, weights="weight")
        from matplotlib.collections import LineCollection

        wmax = float(links["weight"].max()) if len(links) else 1.0
        for layer in sorted(links["layer"].unique(), key=lambda l: (l not in colors, l)):
            sub = links[links["layer"] == layer]
            segs = [[pos[index[a]], pos[index[b]]] for a, b in zip(sub["account_a"], sub["account_b"])]
            lw = (0.4 + 2.0 * sub["weight"].to_numpy() / (wmax or 1.0)).tolist()
            ax.add_collection(LineCollection(segs, colors=colors.get(layer, _OTHER_COLOR), linewidths=lw,
                                             alpha=0.6, label=_text(layer, 20), zorder=1))
        size = max(4.0, min(60.0, 4000.0 / max(len(nodes), 1)))
        ax.scatter(pos[:, 0], pos[:, 1], s=size, c=_ACCOUNT_COLOR, edgecolors="#333333",
                   linewidths=0.3, zorder=2)
        if len(nodes) <= 30:
            for n, (x, y) in zip(nodes, pos):
                ax.annotate(_text(n, 24), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.autoscale_view()
        ax.margins(0.05)
        if len(links):
            ax.legend(loc="lower right", fontsize=8, frameon=False, title="layer", title_fontsize=8)
    else:
        ax.text(0.5, 0.5, "no accounts", ha="center", va="center", transform=ax.transAxes)
    heading = _text(title) if title else ""
    if n_total > len(nodes):
        heading = (heading + "\n" if heading else "") + f"{len(nodes)} of {n_total} accounts (strongest links)"
    if heading:
        ax.set_title(heading, fontsize=10)
    fig.tight_layout()
    return _png(fig)


# --- trend pictures for periodic reports (exporters/report.py) ----------------------------------

#: one colour per lineage status (community/lineage.py), shared by reports and pictures
STATUS_COLORS: dict[str, str] = {
    "new": "#d62728",         # red: needs attention
    "growing": "#ff7f0e",     # orange
    "merged": "#9467bd",      # purple
    "split": "#8c564b",       # brown
    "continuing": "#1f77b4",  # blue
    "shrinking": "#17becf",   # teal
    "dissolved": "#7f7f7f",   # grey
}


def runs_bar_png(labels: list[str], series: Mapping[str, list[float]], *, title: str | None = None,
                 ylabel: str = "", colors: Mapping[str, str] | None = None, stacked: bool = True,
                 width: float = 8.0, height: float = 3.2) -> bytes:
    """Draw one bar group per run: a value per series, stacked or side by side, with values written on top.

    Parameters
    ----------
    labels : list of str
        One label per run, in time order (drawn under the bars, plain text).
    series : mapping of str to list of float
        Series name -> one value per run; drawn in mapping order, legend shown when more than one.
        When stacked, negative values stack downwards from zero (e.g. clusters that disappeared).
    title, ylabel : str
        Picture title and y-axis label (plain text).
    colors : mapping, optional
        Colour per series name (default: matplotlib's cycle).
    stacked : bool
        Stack the series (totals written above each stack) instead of placing them side by side.
    width, height : float
        Size in inches.

    Returns
    -------
    bytes
        A PNG image; the same input gives the same bytes.

    Examples
    --------
    >>> runs_bar_png(["w1", "w2"], {"flagged accounts": [3, 5]})[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    names = list(series)
    n = len(labels)
    x = np.arange(n, dtype=float)
    if n and names:
        palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f"]
        bottom = np.zeros(n)
        below = np.zeros(n)
        group_w = 0.8
        bar_w = group_w if stacked else group_w / len(names)
        for k, name in enumerate(names):
            values = np.asarray([float(v or 0) for v in series[name]], dtype=float)
            color = (colors or {}).get(name, palette[k % len(palette)])
            xs = x if stacked else x - group_w / 2 + bar_w * (k + 0.5)
            if stacked:  # positive values stack upwards, negative ones downwards
                base = np.where(values >= 0, bottom, below)
                ax.bar(xs, values, width=bar_w, bottom=base, color=color, label=_text(name, 30),
                       edgecolor="white", linewidth=0.5)
                bottom = bottom + np.clip(values, 0, None)
                below = below + np.clip(values, None, 0)
            else:
                ax.bar(xs, values, width=bar_w, color=color, label=_text(name, 30), edgecolor="white",
                       linewidth=0.5)
                for xi, v in zip(xs, values):
                    ax.annotate(f"{v:g}", (xi, v), ha="center", va="bottom", fontsize=7,
                                xytext=(0, 1), textcoords="offset points")
        if stacked:
            for xi, v in zip(x, bottom):
                ax.annotate(f"{v:g}", (xi, v), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 1), textcoords="offset points")
            for xi, v in zip(x, below):
                if v < 0:
                    ax.annotate(f"{-v:g}", (xi, v), ha="center", va="top", fontsize=7,
                                xytext=(0, -1), textcoords="offset points")
        top = float(bottom.max()) if stacked else max(
            (float(max(series[s])) for s in names if len(series[s])), default=0.0)
        low = float(below.min()) if stacked else 0.0
        ax.set_ylim(low * 1.4 if low < 0 else 0, max(top * 1.15, 1.0))
        if low < 0:
            from matplotlib.ticker import FuncFormatter, MaxNLocator

            ax.axhline(0, color="#333333", linewidth=0.8)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{abs(v):g}"))
        ax.set_xticks(x)
        rotate = n > 6 or max((len(str(l)) for l in labels), default=0) * n > 90
        ax.set_xticklabels([_text(l, 24) for l in labels], rotation=30 if rotate else 0,
                           ha="right" if rotate else "center", fontsize=8)
        ax.set_xlim(-0.6, n - 0.4)
        if len(names) > 1:  # beside the plot, so it never hides a bar
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    else:
        ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    if ylabel:
        ax.set_ylabel(_text(ylabel, 40))
    if title:
        ax.set_title(_text(title), fontsize=10)
    fig.tight_layout()
    return _png(fig)


def traffic_png(frame: pd.DataFrame, *, title: str | None = None, ylabel: str = "requests",
                boundaries: Iterable | None = None, width: float = 8.0, height: float = 3.2) -> bytes:
    """Draw requests over time as a filled line, with optional dashed lines where runs begin.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``time`` (timestamp or ISO text) and ``requests`` columns, one row per period.
    title, ylabel : str
        Title and y-axis label (plain text).
    boundaries : iterable of timestamps, optional
        Where to draw dashed vertical lines (e.g. the start of each run's window).
    width, height : float
        Size in inches.

    Returns
    -------
    bytes
        A PNG image; the same input gives the same bytes.
    """
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    if frame is not None and len(frame):
        t = pd.to_datetime(frame["time"], utc=True).dt.tz_localize(None)
        v = pd.to_numeric(frame["requests"], errors="coerce").fillna(0).to_numpy(dtype=float)
        order = np.argsort(t.to_numpy(), kind="mergesort")
        xs = t.to_numpy()[order]
        ys = v[order]
        ax.fill_between(xs, ys, step="post", color=LAYER_COLORS["payment"], alpha=0.25, linewidth=0)
        ax.step(xs, ys, where="post", color=LAYER_COLORS["payment"], linewidth=1.2)
        for b in sorted(pd.to_datetime(list(boundaries or ()), utc=True).tz_localize(None)):
            ax.axvline(b, color="#555555", linestyle="--", linewidth=0.8)
        import matplotlib.dates as mdates

        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_ylim(bottom=0, top=max(float(ys.max()) * 1.1, 1.0))
        ax.set_xlabel("time (UTC)")
        ax.spines[["top", "right"]].set_visible(False)
    else:
        ax.text(0.5, 0.5, "no traffic from flagged clusters", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_ylabel(_text(ylabel, 40))
    if title:
        ax.set_title(_text(title), fontsize=10)
    fig.tight_layout()
    return _png(fig)
