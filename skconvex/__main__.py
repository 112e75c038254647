"""Command line: ``python -m skconvex demo [--quick]``."""

import argparse
import sys


def main(argv=None):
    """Entry point of ``python -m skconvex``."""
    parser = argparse.ArgumentParser(prog="python -m skconvex")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="convex network vs MLP on scikit-learn's digits")
    demo.add_argument("--quick", action="store_true", help="use a subset (seconds)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo(quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
