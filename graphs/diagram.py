"""Print the thread graph as Mermaid, or write it into README.md between markers (`--write`)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from graphs.graph import make_graph

START = "<!-- graph:start -->"
END = "<!-- graph:end -->"


def mermaid() -> str:
    """The compiled graph drawn by LangGraph itself."""
    return make_graph().get_graph().draw_mermaid().strip()


def block() -> str:
    """The README block for the diagram."""
    return f"{START}\n```mermaid\n{mermaid()}\n```\n{END}"


def write(readme: Path) -> bool:
    """Replace the block in README; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block(), text, flags=re.S)
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main() -> None:
    """Entry point: `python -m graphs.diagram [--write README.md]`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="README to update in place")
    args = parser.parse_args()
    if args.write:
        write(args.write)
    else:
        import sys

        sys.stdout.write(mermaid() + "\n")


if __name__ == "__main__":
    main()
