"""``python -m search.kerastuner._check module:attr``: exit 0 when the hypermodel loads, else one line, exit 2.

Run by :func:`search.kerastuner.check_spec` in a child process, so the launcher never imports keras.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from search._cli import run_main


def main(argv: Sequence[str] | None = None) -> int:
    from search.kerastuner._hypermodel import load_hypermodel

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m search.kerastuner._check module:attr", file=sys.stderr)
        return 2
    load_hypermodel(args[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
