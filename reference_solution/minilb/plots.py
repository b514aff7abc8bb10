"""Pictures of schedules: Gantt charts (matplotlib) and plain-text timelines for terminals.

Framework code: it draws any ``minilb.timeline.Schedule``, whichever policy produced it.
"""

from collections.abc import Sequence

import matplotlib

# Draw off-screen unless a notebook has already chosen its inline backend.
if (
    not matplotlib.get_backend()
    .lower()
    .startswith(("module://matplotlib_inline", "module://ipykernel", "inline"))
):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from minilb import costs  # noqa: E402
from minilb.timeline import Schedule  # noqa: E402

TYPE_COLOURS = {"V": "#4C72B0", "P": "#55A868", "M": "#DD8452"}


def server_labels(fleet: Sequence[str], names: Sequence[str] | None = None) -> list[str]:
    """``vp1 (VP)``-style labels, with the names the balancer gives the servers."""
    names = costs.server_names(fleet) if names is None else names
    return [f"{name} ({kind})" for name, kind in zip(names, fleet, strict=True)]


def _draw(ax: plt.Axes, schedule: Schedule, title: str, labels: list[str]) -> None:
    for placement in schedule.placements:
        width = placement.finish - placement.start
        ax.barh(
            placement.server,
            width,
            left=placement.start,
            color=TYPE_COLOURS[placement.request.type],
            edgecolor="black",
            linewidth=0.8,
        )
        if width > 0:
            ax.text(
                placement.start + width / 2,
                placement.server,
                str(placement.request),
                ha="center",
                va="center",
                fontsize=8,
                color="white",
            )
    ax.axvline(schedule.makespan, color="crimson", linestyle="--", linewidth=1.5)
    ax.text(
        schedule.makespan,
        len(labels) - 0.45,
        f" makespan {schedule.makespan:.4g}",
        color="crimson",
        va="bottom",
        fontsize=9,
    )
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.4, -0.6)  # first server on top, room for the makespan label
    ax.set_xlabel("time (units)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)


def gantt(
    schedules: Schedule | dict[str, Schedule],
    path: str | None = None,
    title: str | None = None,
    server_names: Sequence[str] | None = None,
) -> Figure:
    """One Gantt chart per schedule, stacked, on a shared time axis; saved to ``path`` if given.

    Each row is a server, each bar a request coloured by type, the dashed line the makespan.
    """
    if isinstance(schedules, Schedule):
        schedules = {title or "schedule": schedules}
        title = None
    if not schedules:
        raise ValueError("gantt needs at least one schedule")
    rows = sum(len(s.fleet) for s in schedules.values())
    figure, axes = plt.subplots(
        len(schedules),
        1,
        sharex=True,
        squeeze=False,
        figsize=(9, 1.2 + 0.55 * rows + 0.6 * len(schedules)),
    )
    for ax, (name, schedule) in zip(axes[:, 0], schedules.items(), strict=True):
        _draw(ax, schedule, name, server_labels(schedule.fleet, server_names))
    for ax in axes[:-1, 0]:
        ax.set_xlabel("")
    figure.legend(
        handles=[Patch(color=c, label=costs.TYPE_NAMES[t]) for t, c in TYPE_COLOURS.items()],
        loc="upper right",
        ncols=3,
        fontsize=8,
        frameon=False,
    )
    if title:
        figure.suptitle(title, x=0.02, ha="left")
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def _block(label: str, size: int) -> str:
    """``[V2---]`` filling ``size`` characters, or as much of the label as fits."""
    if size >= len(label) + 2:
        return "[" + label + "-" * (size - len(label) - 2) + "]"
    return label[:size].ljust(size, "-")


def text_timeline(
    schedule: Schedule, width: int = 60, server_names: Sequence[str] | None = None
) -> str:
    """The schedule as text: one line per server, each request a ``[V2---]`` block.

    Time is scaled so that the makespan fits in ``width`` characters.
    """
    scale = width / schedule.makespan if schedule.makespan > 0 else 1.0
    rows = [[" "] * width for _ in schedule.fleet]
    for placement in schedule.placements:
        start = min(round(placement.start * scale), width - 1)
        end = min(max(start + 1, round(placement.finish * scale)), width)
        rows[placement.server][start:end] = _block(str(placement.request), end - start)
    labels = server_labels(schedule.fleet, server_names)
    lines = [
        f"{label:>10} |{''.join(row).rstrip()}" for label, row in zip(labels, rows, strict=True)
    ]
    lines.append(f"{'':>10} +{'-' * width} makespan {schedule.makespan:.4g}")
    return "\n".join(lines)
