"""Check the built documentation: every gallery page shows what its example produced.

Run after ``python -m sphinx ... doc doc/_build/html`` (``.ci/run`` does): each
``auto_examples/plot_*.html`` page must contain at least one figure from the
executed example or one block of printed output, and the landing and
benchmark pages their figures. Exits non-zero, naming the pages, otherwise.
"""

import re
import sys
from pathlib import Path


def _problems(site):
    pages = sorted((site / "auto_examples").glob("plot_*.html"))
    if not pages:
        return [f"no gallery pages under {site / 'auto_examples'}: was the gallery built?"]
    problems = []
    for page in pages:
        html = page.read_text(encoding="utf-8")
        figure = re.search(r'<img[^>]+src="[^"]*images/sphx_glr_plot_[^"]+\.png"', html)
        printed = "sphx-glr-script-out" in html
        if not (figure or printed):
            problems.append(f"{page.name}: no figure and no printed output (was the example executed?)")
    for name in ("index.html", "benchmarks.html"):
        page = site / name
        if not page.exists():
            problems.append(f"{name}: missing")
        elif not re.search(r"<(img|svg)\b", page.read_text(encoding="utf-8")):
            problems.append(f"{name}: no figure")
    return problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    site = Path(argv[0] if argv else "doc/_build/html")
    problems = _problems(site)
    for problem in problems:
        print(f"check_site: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_site: {len(list((site / 'auto_examples').glob('plot_*.html')))} gallery pages, "
              "landing and benchmark pages all show their output")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
