"""Regenerate every key figure of the course: ``python -m camlib.figures [OUTDIR]``.

Each notebook ``NN_name.ipynb`` has a module ``camlib.figures.nbNN`` whose ``key_figure()``
returns the figure the notebook shows; it is written to ``OUTDIR/NN_name.png``. The README's
overview figure comes from :mod:`camlib.figures.overview`.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402

from . import FIGURES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the course's key figures.")
    parser.add_argument("outdir", type=Path, nargs="?", default=Path("figures"))
    parser.add_argument("--only", nargs="*", help="figure names to render (default: all)")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, module_name in FIGURES.items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        module = importlib.import_module(f"camlib.figures.{module_name}")
        figure = module.key_figure()
        path = args.outdir / f"{name}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        print(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
