"""Does the search earn its keep? The ``attn`` study on full debtags50, finalized and scored on test.

    python bench/quality.py [--minutes 60] [--out DIR] [--reuse] [--json out.json]

1. Search: ``python -m search.launch --study attn --timeout MINUTES*60`` with the main command's other
   defaults (whole training split, strong start, pruning inside epochs, early stopping) into
   ``DIR/studies.db``; both cores (one TensorFlow worker, which spreads over them).
2. Finalize: ``python -m search.finalize --study attn``: the greedy ensemble of the saved top trials,
   the best configuration refit on train + validation, and the ensemble with its members refit so.
3. Report: ``search.report.make_report``: the TF-IDF + logistic regression reference on the raw text,
   and test micro-F1 / macro-F1 of the best single model, the ensemble, the refit and the ensemble refit,
   each with its paired bootstrap 95% interval against the reference (over test documents).
4. Use: ``python -m search.export --study attn --final refit-ensemble`` (a bare ``--final``'s choice;
   ``--export NAME``: another final model) into ``DIR/final-model``, then the test split's raw text through that folder alone
   (``search.load_predictor``): its test micro-F1 is compared with the report's row of that final model,
   and the folder's size and documents per second are printed.

``--reuse``: skip the search when ``DIR/studies.db`` already holds a finished study (to finalize and
report a run again; ``--finalize-arg=--no-refit`` keeps the refit already recorded, and
``--finalize-arg=--no-ensemble`` the ensemble, which the ensemble refit then refits). Prints the table
and the targets (best single >= 0.70 test micro-F1; final >= 0.725 micro-F1 and >= 0.57 macro-F1 with
the interval's lower end above 0); record it in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STUDY = "attn"
TARGET_SINGLE = 0.70
TARGET_FINAL_MICRO = 0.725
TARGET_FINAL_MACRO = 0.57


def _run(module: str, *args: str, cwd: Path) -> float:
    command = [sys.executable, "-m", module, *args]
    print("$ " + " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True)
    return time.perf_counter() - start


def _row(name: str, metrics: dict[str, float], diff: Any) -> dict[str, Any]:
    return {"model": name, "test_micro_f1": metrics["micro_f1"], "test_macro_f1": metrics["macro_f1"],
            "diff": diff.estimate, "low": diff.low, "high": diff.high}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="the search's wall-clock budget")
    parser.add_argument("--out", type=Path, default=Path("bench-quality"), help="folder of the store and report")
    parser.add_argument("--reuse", action="store_true", help="finalize and report the study already in --out")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    parser.add_argument("--launch-arg", action="append", default=[], help="extra search.launch flag (repeat)")
    parser.add_argument("--finalize-arg", action="append", default=[],
                        help="extra search.finalize flag (repeat); --finalize-arg=--no-refit with --reuse keeps "
                        "the refit already recorded")
    parser.add_argument("--export", default="refit-ensemble", choices=("ensemble", "refit", "refit-ensemble"),
                        help="the final model step 4 exports and checks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    storage = f"sqlite:///{out / 'studies.db'}"
    seconds: dict[str, float] = {}
    if not (args.reuse and (out / "studies.db").is_file()):
        seconds["search"] = _run("search.launch", "--study", STUDY, "--timeout", f"{args.minutes * 60:g}",
                                 "--storage", storage, "--no-progress", *args.launch_arg, cwd=out)
    seconds["finalize"] = _run("search.finalize", "--study", STUDY, "--storage", storage, *args.finalize_arg, cwd=out)
    start = time.perf_counter()
    from search.report import make_report

    report = make_report(STUDY, storage=storage, out=out / "report")
    seconds["report"] = time.perf_counter() - start
    rows = [_row(f"best single (trial {report.best.number})", report.best.metrics, report.deep_vs_baseline)]
    rows += [_row(final.name, final.metrics, final.diff) for final in report.finals]
    reference = report.baseline
    print(f"\nstudy {STUDY}: {report.trial_counts}; {report.data_summary}")
    print(f"reference: {reference.name} ({reference.input}): validation micro-F1 {reference.valid_micro_f1:.4f}, "
          f"test micro-F1 {reference.metrics['micro_f1']:.4f}, macro-F1 {reference.metrics['macro_f1']:.4f}")
    print("| model | test micro-F1 | test macro-F1 | micro-F1 minus reference, 95% CI |")
    print("|---|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {r['test_micro_f1']:.4f} | {r['test_macro_f1']:.4f} | "
              f"{r['diff'] * 100:+.2f} points [{r['low'] * 100:+.2f}, {r['high'] * 100:+.2f}] |")
    single = rows[0]
    print(f"\nbest single >= {TARGET_SINGLE}: {'met' if single['test_micro_f1'] >= TARGET_SINGLE else 'missed'}")
    for r in rows[1:]:
        met = (r["test_micro_f1"] >= TARGET_FINAL_MICRO and r["test_macro_f1"] >= TARGET_FINAL_MACRO
               and r["low"] > 0)
        print(f"{r['model']}: >= {TARGET_FINAL_MICRO} micro, >= {TARGET_FINAL_MACRO} macro, CI above 0: "
              f"{'met' if met else 'missed'}")
    # a final model's first row is what its export decides with (per-label thresholds where it has them)
    final_rows = [r for r, final in zip(rows[1:], report.finals, strict=True) if final.kind == args.export]
    used = _use_the_export(out, storage, seconds, args.export, final_rows[0] if final_rows else None)
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "reference": reference.metrics, "seconds": seconds,
                                         "trials": report.trial_counts, "export": used}, indent=2))
    return 0


def _use_the_export(out: Path, storage: str, seconds: dict[str, float], which: str,
                    row: dict[str, Any] | None) -> dict[str, Any] | None:
    """The final model ``which`` as a user gets it: exported, then the raw test text through the folder
    alone; its test micro-F1 must be the report's (which scored the same models from the study's token
    ids)."""
    import search
    from search._study import read_study
    from search.data import load_dataset, load_texts
    from search.metrics import evaluate
    from storage import create_storage

    if row is None:
        print(f"\nno final {which} to export (search.finalize did not make one)")
        return None
    folder = out / "final-model"
    seconds["export"] = _run("search.export", "--study", STUDY, "--storage", storage, "--final", which,
                             "--out", str(folder), "--force", cwd=out)
    config = read_study(create_storage(storage), STUDY).config
    texts = load_texts(config.data, config.data_settings())
    assert texts is not None
    y_test = load_dataset(config.data, config.data_settings(), include_test=True).y_test
    predictor = search.load_predictor(folder)
    start = time.perf_counter()
    prob = predictor.predict_proba(texts["test"])
    predict_s = time.perf_counter() - start
    metrics = evaluate(y_test, prob, predictor.thresholds)  # what the folder decides with
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    same = abs(metrics["micro_f1"] - row["test_micro_f1"]) < 5e-4
    print(f"\nthe exported {which} ({folder}, {size:.0f} MB, {len(predictor.models)} models): test micro-F1 "
          f"{metrics['micro_f1']:.4f}, macro-F1 {metrics['macro_f1']:.4f} from raw text, "
          f"{len(prob) / predict_s:.0f} documents/s; the report: {row['test_micro_f1']:.4f} "
          f"({'the same' if same else 'DIFFERENT'})")
    return {"test_micro_f1": metrics["micro_f1"], "test_macro_f1": metrics["macro_f1"], "megabytes": size,
            "docs_per_second": len(prob) / predict_s, "same_as_report": same}


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise SystemExit(main())
