#!/usr/bin/python3
"""Draws mproc-bench's figures as PNG charts: one per section, mproc beside Python and the bare OS.

    charts.py DATA [-o DIR]           check DATA (mproc-bench --data FILE), draw DIR/<section>.png
    charts.py --check DATA [--complete SECTION ...]
                                      check only (no matplotlib needed); each --complete section
                                      must hold mproc's figures beside a bare or library rival's,
                                      and Python's when a python3 is on PATH (the bench runs it)

scripts/charts.sh runs the benchmark and this script in one command. Each workload of a section
is one panel: horizontal bars in the workload's unit, a log scale when its figures span more than
20x, whiskers from the lowest to the highest run where the runs were kept. Drawing needs Debian's
python3-matplotlib (scripts/setup.sh installs it): run it with /usr/bin/python3, as a pyenv
python3 on PATH may lack it. Exits 77 (CTest's skip) when matplotlib is missing.
"""
import argparse
import io
import json
import math
import os
import shutil
import sys
import textwrap

RIVALS = {  # rival: (legend, colour)
    "mproc": ("mproc", "#1f5fa8"),
    "python": ("Python", "#e08a1e"),
    "bare": ("bare OS / bare MPI (the limit)", "#8c8c8c"),
    "library": ("another C++ library", "#3a9a4a"),
}
TITLES = {
    "process": "Process start+join",
    "connection": "Connections",
    "queue": "Queues",
    "pool": "Pools",
    "futures": "concurrent.futures",
    "managers": "Managers",
    "sync": "Shared state and locks",
    "mpi": "mproc::mpi, mpiexec -n 2",
}
FIELDS = {"section": str, "workload": str, "rival": str, "name": str, "unit": str,
          "median": (int, float), "runs": int, "samples": list}
LOG_SPAN = 20  # a panel whose figures span more than this factor is drawn on a log scale
TITLE_WIDTH = 72  # characters of a panel's title per line: what fits beside the bars' names


def problems(data, complete=()):
    """What is wrong with mproc-bench data: a list of sentences, empty when it is valid."""
    out = []
    for key, kind in (("format", str), ("date", str), ("commit", str), ("quick", bool), ("cpus", int),
                      ("load", (int, float)), ("compiler", str), ("figures", list)):
        if not isinstance(data.get(key), kind):
            out.append(f"'{key}' is missing or not a {getattr(kind, '__name__', 'number')}")
    if out:
        return out
    if data["format"] != "mproc-bench data 1":
        out.append(f"unknown format {data['format']!r}")
    units = {}
    for i, f in enumerate(data["figures"]):
        where = f"figure {i} ({f.get('section')}: {f.get('name')})"
        bad = [k for k, kind in FIELDS.items() if not isinstance(f.get(k), kind) or isinstance(f.get(k), bool)]
        if bad:
            out.append(f"{where}: {', '.join(bad)} missing or of the wrong type")
            continue
        if not all(f[k] for k in ("section", "workload", "name", "unit")):
            out.append(f"{where}: an empty name")
        if f["rival"] not in RIVALS:
            out.append(f"{where}: unknown rival {f['rival']!r}")
        if not (math.isfinite(f["median"]) and f["median"] > 0):
            out.append(f"{where}: median {f['median']} is not a positive number")
        if f["runs"] < 1:
            out.append(f"{where}: {f['runs']} runs")
        s = f["samples"]
        if s:
            if len(s) != f["runs"] or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in s):
                out.append(f"{where}: {len(s)} samples for {f['runs']} runs, or not all numbers")
            elif not min(s) * (1 - 1e-9) <= f["median"] <= max(s) * (1 + 1e-9):
                out.append(f"{where}: median {f['median']} outside its runs {min(s)}..{max(s)}")
        unit = units.setdefault((f["section"], f["workload"]), f["unit"])
        if unit != f["unit"]:
            out.append(f"{where}: unit {f['unit']!r} where its workload's other figures use {unit!r}")
    for section in complete:
        rivals = {f["rival"] for f in data["figures"] if f.get("section") == section}
        want = {"mproc"} | ({"python"} if shutil.which("python3") else set())
        missing = sorted(want - rivals) + ([] if rivals & {"bare", "library"} else ["bare or library"])
        if missing:
            out.append(f"section {section}: no figure of {', '.join(missing)}")
    return out


def human(unit, x):
    """x in its unit as the benchmark's tables print it: 453 us, 5.78 ms, 17.9M msg/s, 1.96x."""
    if unit == "s":
        for div, label in ((1e-6, "ns"), (1e-3, "us"), (1.0, "ms")):
            if x < div:
                return f"{x / div * 1000:.3g} {label}"
        return f"{x:.3g} s"
    if unit == "x":
        return f"{x:.2f}x"
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div and unit.endswith("/s") and unit not in ("GB/s", "GiB/s"):
            return f"{x / div:.3g}{prefix} {unit}"
    return f"{x:.3g} {unit}"


def span(figs):
    """The lowest and highest figures of a panel: each figure's median, or its runs where kept."""
    lo = [min(f["samples"]) if f["samples"] else f["median"] for f in figs]
    hi = [max(f["samples"]) if f["samples"] else f["median"] for f in figs]
    return lo, hi


def title(workload, figs):
    lo, hi = span(figs)
    better = "lower" if figs[0]["unit"] == "s" else "higher"
    log = "; log scale" if max(hi) / min(lo) > LOG_SPAN else ""
    return textwrap.fill(f"{workload} ({better} is better{log})", TITLE_WIDTH)


def panel(ax, workload, figs):
    from matplotlib.ticker import FuncFormatter

    unit = figs[0]["unit"]
    med = [f["median"] for f in figs]
    lo, hi = span(figs)
    ys = range(len(figs))
    log = max(hi) / min(lo) > LOG_SPAN
    left = min(lo) / 2 if log else 0
    ax.barh(ys, [m - left for m in med], left=left, color=[RIVALS[f["rival"]][1] for f in figs], height=0.65)
    whiskers = [i for i, f in enumerate(figs) if len(f["samples"]) > 1]
    if whiskers:
        ax.errorbar([med[i] for i in whiskers], whiskers, fmt="none", ecolor="black", elinewidth=0.8, capsize=2,
                    xerr=[[med[i] - lo[i] for i in whiskers], [hi[i] - med[i] for i in whiskers]])
    if log:
        ax.set_xscale("log")
    ax.set_xlim(left, max(hi) * (5 if log else 1.3))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: human(unit, x) if x > 0 else "0"))
    for y, m, h in zip(ys, med, hi):
        ax.text(h * 1.12 if log else h + max(hi) * 0.02, y, human(unit, m), va="center", fontsize=7.5)
    ax.set_yticks(list(ys), [f["name"] for f in figs], fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title(workload, figs), fontsize=8.5, loc="left")
    ax.tick_params(axis="x", labelsize=7.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def draw(data, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
        from PIL import Image
    except ImportError:
        print("charts.py: matplotlib is missing (scripts/setup.sh installs python3-matplotlib; "
              "run this with /usr/bin/python3)", file=sys.stderr)
        sys.exit(77)
    os.makedirs(outdir, exist_ok=True)
    sections = {}
    for f in data["figures"]:
        sections.setdefault(f["section"], {}).setdefault(f["workload"], []).append(f)
    run = (f"{'quick run' if data['quick'] else 'full run'} of mproc-bench, commit {data['commit'] or '?'}, "
           f"{data['date'][:10]}, {data['cpus']} CPUs, load {data['load']:.1f} at its end, {data['compiler']}; medians")
    written = []
    for section, workloads in sections.items():
        heights = [0.45 + 0.15 * title(w, figs).count("\n") + 0.25 * len(figs) for w, figs in workloads.items()]
        fig, axes = plt.subplots(len(heights), 1, figsize=(7.5, sum(heights) + 0.7),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        for ax, (workload, figs) in zip(axes[:, 0], workloads.items()):
            panel(ax, workload, figs)
        present = [r for r in RIVALS if any(f["rival"] == r for figs in workloads.values() for f in figs)]
        fig.legend(handles=[Patch(color=RIVALS[r][1], label=RIVALS[r][0]) for r in present], loc="upper right",
                   fontsize=7.5, ncol=len(present), frameon=False)
        fig.suptitle(TITLES.get(section, section), x=0.02, ha="left", fontsize=11, fontweight="bold")
        fig.text(0.02, 0.005, run + "; whiskers: lowest to highest run, where kept", fontsize=6.5, color="#555555")
        fig.tight_layout(rect=(0, 0.025, 1, 0.96), h_pad=1.0)
        path = os.path.join(outdir, f"{section}.png")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        # A chart has a few flat colours and anti-aliased text: 64 colours look the same and make
        # the file a third as large (Pillow comes with matplotlib).
        Image.open(buf).convert("RGB").quantize(colors=64).save(path, optimize=True)
        written.append(path)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="the JSON that mproc-bench --data FILE wrote")
    ap.add_argument("-o", "--out", default=".", help="where to write <section>.png (default: here)")
    ap.add_argument("--check", action="store_true", help="check the data only")
    ap.add_argument("--complete", nargs="*", default=[], metavar="SECTION",
                    help="sections that must hold mproc's, a bare or library rival's and Python's figures")
    args = ap.parse_args()
    with open(args.data) as f:
        data = json.load(f)
    wrong = problems(data, args.complete)
    if wrong:
        print(f"charts.py: {args.data} is not valid mproc-bench data:\n  " + "\n  ".join(wrong), file=sys.stderr)
        sys.exit(1)
    if args.check:
        print(f"charts.py: {args.data}: {len(data['figures'])} figures, valid")
        return
    for path in draw(data, args.out):
        print(f"charts.py: wrote {path} ({os.path.getsize(path) // 1024} KiB)")


if __name__ == "__main__":
    main()
