"""Cold vs cached load of the bundled ``debtags50`` dataset, measured side by side in one run.

    python bench/data_load.py [--repeats 3] [--max-len 200] [--vocab-size 20000]

Cold: empty cache folder, so the file is read, tokenised and vectorised. Cached: the same call again.
Prints the median of each and their ratio (target: cached at least 10x faster).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from search.data import DataSettings, load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--vocab-size", type=int, default=20000)
    args = parser.parse_args()
    settings = DataSettings(vocab_size=args.vocab_size, max_len=args.max_len)
    cold, warm = [], []
    for _ in range(args.repeats):
        root = Path(tempfile.mkdtemp(prefix="bench-cache-"))
        try:
            t0 = time.perf_counter()
            load_dataset("debtags50", settings, cache=root)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            load_dataset("debtags50", settings, cache=root)
            warm.append(time.perf_counter() - t0)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"debtags50 load, vocab {args.vocab_size}, max_len {args.max_len}, {args.repeats} repeats (median)")
    print(f"| load | seconds |\n|---|---|\n| cold (tokenise + vectorise) | {c:.3f} |\n| cached | {w:.4f} |")
    print(f"cached speed-up: {c / w:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
