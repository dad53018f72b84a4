"""Chart of a soak's samples (scripts/soak.sh): hallpass's RSS and the p99
of each 10-second window over time, from the CSV hallpass-soak writes.

Usage: soak-plot.py SAMPLES.csv OUT.png
Run by scripts/soak.sh with the matplotlib of the project's venv
(target/tools/venv), never the machine's Python packages.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    src, out = sys.argv[1], sys.argv[2]
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    t = [int(r["t_s"]) / 60 for r in rows]
    rss = [int(r["rss_kib"]) / 1024 for r in rows]
    p99 = [float(r["p99_ms"]) for r in rows]
    p50 = [float(r["p50_ms"]) for r in rows]

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5.5))
    top.plot(t, rss, color="tab:blue", marker=".")
    top.set_ylabel("hallpass RSS (MiB)")
    top.set_ylim(bottom=0, top=max(rss) * 1.25)
    top.grid(alpha=0.3)
    top.set_title("hallpass soak: RSS and latency through the Envoy pair")
    bottom.plot(t, p99, color="tab:red", marker=".", label="p99")
    bottom.plot(t, p50, color="tab:gray", marker=".", label="p50")
    bottom.set_ylabel("request latency (ms)")
    bottom.set_ylim(bottom=0, top=max(p99) * 1.25)
    bottom.set_xlabel("minutes (policy reload and bundle rotation every minute)")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
