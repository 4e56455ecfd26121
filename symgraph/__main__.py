"""``python -m symgraph explore SCRIPT``: the explorer page (:func:`symgraph.explore`) of a script's graph.

The script is run (as a module named ``__symgraph_explore__``, so its ``if __name__ == "__main__":``
block does not run) and must define, at module level:

- ``outputs`` (or the name given with ``--outputs``): a node or a list of nodes, or a function
  of no arguments returning them;
- optionally ``feed`` (or ``--feed NAME``): {placeholder or its name: array}, or a function
  returning it, for the page's value sweeps.

The page is written to ``-o PATH`` (default: ``<script name>.html`` in the current directory).
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path


def _lookup(namespace: dict, name: str, script: str, required: bool):
    if name not in namespace:
        if required:
            raise SystemExit(f"symgraph explore: {script} defines no {name!r} (the graph's outputs; see --help)")
        return None
    value = namespace[name]
    return value() if callable(value) else value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symgraph", description="symgraph tools")
    commands = parser.add_subparsers(dest="command", required=True)
    explore = commands.add_parser("explore", help="write the explorer page of a script's graph",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    explore.add_argument("script", help="a Python file defining the outputs (and optionally a feed)")
    explore.add_argument("-o", "--out", help="the page to write (default: <script name>.html)")
    explore.add_argument("--outputs", default="outputs", help="the script's name for the outputs (default: outputs)")
    explore.add_argument("--feed", default="feed", help="the script's name for the feed (default: feed; optional)")
    explore.add_argument("--simplify", action="store_true", help="draw and compile the simplified graph")
    explore.add_argument("--title", help="the page's title")
    args = parser.parse_args(argv)

    import symgraph as sg

    sys.path.insert(0, str(Path(args.script).resolve().parent))  # the script's own imports
    namespace = runpy.run_path(args.script, run_name="__symgraph_explore__")
    outputs = _lookup(namespace, args.outputs, args.script, required=True)
    feed = _lookup(namespace, args.feed, args.script, required=args.feed != "feed")
    out = args.out or Path(args.script).with_suffix(".html").name
    print(f"wrote {sg.explore(outputs, out, feed=feed, simplify=args.simplify, title=args.title)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
