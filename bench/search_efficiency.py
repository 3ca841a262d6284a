"""Search efficiency against the peers: the same space, the same epoch budget, side by side in one run.

    python bench/search_efficiency.py [--repeats 3] [--budget 72] [--max-epochs 9] [--limit 2000]

Contenders, each on the SAME keras-tuner HyperModel (``TextHyperModel`` below: embedding width, dropout,
LSTM width, bidirectional or not, pooling, learning rate, batch size) and the SAME objective, the tuned
micro-F1 on the whole validation split after every epoch (``val_micro_f1_tuned``, written into the logs
by the service's own ``ValidationF1`` callback, for keras-tuner as ``kt.Objective(..., "max")``):

* ``service``: this service through its keras-tuner bridge (``search.kerastuner.run``): TPE and the
  Hyperband pruner (min 1, max ``--max-epochs``, factor 3; the service's default when this was measured,
  kept here so the comparison with keras-tuner's Hyperband stays like for like), SQLite store;
* ``service-nopruning``: the same without pruning;
* ``random``: the service with Optuna's RandomSampler, no pruning;
* ``kt-hyperband``: ``keras_tuner.Hyperband(max_epochs=--max-epochs, factor=3)``;
* ``kt-bayesian``: ``keras_tuner.BayesianOptimization``, every trial ``--max-epochs`` epochs.

Every contender gets exactly ``--budget`` training epochs per repeat (counted by one callback inside the
hypermodel's ``fit``; the epoch that spends the budget ends the search), ``--repeats`` repeats with seeds
0, 1, 2, ... Each (repeat, contender) runs in its own process, interleaved repeat by repeat so machine
load falls on every contender alike; keras-tuner's working directories live in a temporary folder.

Printed per contender: best validation micro-F1 (mean and range over repeats); the best-so-far after a
quarter and half of the budget (anytime performance); epochs spent until the best-so-far came within
0.005 of the overall best (any contender, any repeat; with how many repeats got there); wall time;
trials; then each as a ratio to keras-tuner Hyperband.
``--json`` writes every run's epoch-by-epoch timeline; ``--table-from`` re-prints the tables from it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

CONTENDERS = ("service", "service-nopruning", "random", "kt-hyperband", "kt-bayesian")
REFERENCE = "kt-hyperband"
WITHIN = 0.005
MONITOR = "val_micro_f1_tuned"


# ----------------------------------------------------------------------------------------------------
# The shared search space: one keras-tuner HyperModel, used unchanged by every contender.


@dataclass
class Budget:
    """Epochs every contender may train in one repeat, and what each epoch scored."""

    total: int
    spent: int = 0
    best: float = -math.inf
    started: float = 0.0

    def __post_init__(self) -> None:
        self.timeline: list[tuple[int, float, float]] = []  # (epochs spent, value, seconds since start)
        self.started = time.perf_counter()

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.total


def _budget_callback(budget: Budget) -> Any:
    import keras

    class BudgetCallback(keras.callbacks.Callback):
        """Counts every trained epoch; stops training when the budget is spent. Sits right after the
        callback that writes ``val_micro_f1_tuned`` and before any pruner (a pruned epoch still counts)."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            budget.spent += 1
            value = float((logs or {}).get(MONITOR, float("nan")))
            if math.isfinite(value):
                budget.best = max(budget.best, value)
            budget.timeline.append((budget.spent, value, round(time.perf_counter() - budget.started, 3)))
            if budget.exhausted:
                self.model.stop_training = True

    return BudgetCallback()


def make_hypermodel(vocab_size: int, n_labels: int, budget: Budget | None = None) -> Any:
    import keras
    import keras_tuner
    from keras import layers

    class TextHyperModel(keras_tuner.HyperModel):
        """Tiny multi-label text classifier: embedding -> dropout -> (Bi)LSTM -> pooling -> sigmoid."""

        def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
            inputs = keras.Input(shape=(None,), dtype="int32")
            x = layers.Embedding(vocab_size, hp.Int("embedding_dim", 16, 64, step=16))(inputs)
            x = layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1))(x)
            lstm = layers.LSTM(hp.Int("hidden_units", 16, 64, step=16), return_sequences=True)
            x = layers.Bidirectional(lstm)(x) if hp.Boolean("bidirectional") else lstm(x)
            if hp.Choice("pooling", ["max", "average"]) == "max":
                x = layers.GlobalMaxPooling1D()(x)
            else:
                x = layers.GlobalAveragePooling1D()(x)
            outputs = layers.Dense(n_labels, activation="sigmoid")(x)
            model = keras.Model(inputs, outputs)
            model.compile(optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 3e-2, sampling="log")),
                          loss="binary_crossentropy")
            return model

        def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
            callbacks = list(kwargs.pop("callbacks", []) or [])
            if budget is not None:
                at = next((i + 1 for i, c in enumerate(callbacks) if type(c).__name__ == "ValidationF1"),
                          len(callbacks))
                callbacks.insert(at, _budget_callback(budget))
            return model.fit(*args, batch_size=hp.Choice("batch_size", [32, 64, 128]), callbacks=callbacks,
                             **kwargs)

    return TextHyperModel()


# ----------------------------------------------------------------------------------------------------
# One contender, one repeat (a child process).


def _load(args: argparse.Namespace) -> Any:
    from search.data import DataSettings, load_dataset

    return load_dataset("debtags50", DataSettings(vocab_size=args.vocab_size, max_len=args.max_len, limit=args.limit))


def _run_service(args: argparse.Namespace, work: Path, budget: Budget, dataset: Any) -> int:
    import optuna

    from search.kerastuner import run

    sampler, pruner = {"service": ("tpe", "hyperband"), "service-nopruning": ("tpe", "none"),
                       "random": ("random", "none")}[args.child]
    hypermodel = make_hypermodel(dataset.vocab_size, dataset.n_labels, budget)

    def stop_when_spent(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if budget.exhausted:
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    budget.started = time.perf_counter()
    study = run(hypermodel, study_name=f"bench-{args.child}-{args.seed}", storage=f"sqlite:///{work / 'bench.db'}",
                n_trials=10**6, epochs=args.max_epochs, vocab_size=args.vocab_size, max_len=args.max_len,
                limit=args.limit, seed=args.seed, pruner=pruner, sampler=sampler, save_models=False,
                callbacks=[stop_when_spent], log=lambda message: None)
    return len(study.trials)


def _run_keras_tuner(args: argparse.Namespace, work: Path, budget: Budget, dataset: Any) -> int:
    import keras_tuner as kt

    from search.objective import ValidationF1
    from search.runtime import seed_everything

    seed_everything(args.seed)  # the same seeding (and deterministic ops) as the service's trials
    hypermodel = make_hypermodel(dataset.vocab_size, dataset.n_labels, budget)
    objective = kt.Objective(MONITOR, direction="max")
    common = dict(objective=objective, seed=args.seed, directory=str(work / "kt"), project_name=args.child,
                  overwrite=True)
    if args.child == "kt-hyperband":
        tuner = kt.Hyperband(hypermodel, max_epochs=args.max_epochs, factor=3, hyperband_iterations=1000, **common)
    else:
        tuner = kt.BayesianOptimization(hypermodel, max_trials=10**6, **common)
    # keras-tuner 1.4.8 imports tensorboard in every trial under the TensorFlow backend, only to patch
    # TensorBoard callbacks; tensorflow 2.21 no longer installs tensorboard and this bench passes none.
    tuner._configure_tensorboard_dir = lambda callbacks, trial, execution=0: None
    populate = tuner.oracle.populate_space

    def populate_within_budget(trial_id: str) -> dict[str, Any]:
        return {"status": "STOPPED", "values": None} if budget.exhausted else populate(trial_id)

    tuner.oracle.populate_space = populate_within_budget
    budget.started = time.perf_counter()
    tuner.search(dataset.x_train, dataset.y_train.astype("float32"), epochs=args.max_epochs, verbose=0,
                 callbacks=[ValidationF1(dataset.x_valid, dataset.y_valid)])
    return len(tuner.oracle.trials)


def child(args: argparse.Namespace) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    work = Path(tempfile.mkdtemp(prefix=f"bench-search-{args.child}-"))
    try:
        dataset = _load(args)
        budget = Budget(args.budget)
        runner = _run_keras_tuner if args.child.startswith("kt-") else _run_service
        trials = runner(args, work, budget, dataset)
        wall = time.perf_counter() - budget.started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"contender": args.child, "seed": args.seed, "wall_s": round(wall, 2), "trials": trials,
              "epochs": budget.spent, "best": budget.best, "timeline": budget.timeline}
    Path(args.result).write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------------
# The parent: every (repeat, contender) in a fresh process, then the table.


def _epochs_to(timeline: Sequence[Sequence[float]], target: float) -> int | None:
    """Epochs spent when the best-so-far first reached ``target`` (None: never)."""
    best = -math.inf
    for spent, value, _ in timeline:
        if math.isfinite(value):
            best = max(best, value)
        if best >= target:
            return int(spent)
    return None


def _best_at(timeline: Sequence[Sequence[float]], epochs: int) -> float:
    """Best-so-far after ``epochs`` training epochs (anytime performance)."""
    values = [v for spent, v, _ in timeline if spent <= epochs and math.isfinite(v)]
    return max(values) if values else float("nan")


def _fmt_range(values: Sequence[float], digits: int = 4) -> str:
    return f"{statistics.mean(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def table(results: list[dict[str, Any]], contenders: Sequence[str]) -> str:
    """The comparison: per contender over its repeats, then each as a ratio to keras-tuner Hyperband."""
    overall = max(r["best"] for r in results)
    target = overall - WITHIN
    budget = max(r["epochs"] for r in results)
    quarter, half = max(1, budget // 4), max(1, budget // 2)
    rows: dict[str, dict[str, Any]] = {}
    for name in contenders:
        runs = [r for r in results if r["contender"] == name]
        if not runs:
            continue
        reached = [e for e in (_epochs_to(r["timeline"], target) for r in runs) if e is not None]
        rows[name] = {"best": [r["best"] for r in runs], "reached": reached, "n": len(runs),
                      "quarter": [_best_at(r["timeline"], quarter) for r in runs],
                      "half": [_best_at(r["timeline"], half) for r in runs],
                      "wall": [r["wall_s"] for r in runs], "trials": [r["trials"] for r in runs],
                      "epochs": [r["epochs"] for r in runs]}
    lines = [f"overall best validation micro-F1 (tuned), any contender and repeat: {overall:.4f}; target = overall "
             f"best - {WITHIN} = {target:.4f}", "",
             f"| contender | best val micro-F1, mean [min, max] | best after {quarter} epochs | best after {half} "
             f"epochs | epochs to target, mean (repeats that reached it) | wall s, mean [min, max] | trials, mean | "
             "epochs spent |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        reach = f"{statistics.mean(row['reached']):.1f} ({len(row['reached'])}/{row['n']})" if row["reached"] \
            else f"not reached (0/{row['n']})"
        lines.append(f"| {name} | {_fmt_range(row['best'])} | {statistics.mean(row['quarter']):.4f} | "
                     f"{statistics.mean(row['half']):.4f} | {reach} | "
                     f"{_fmt_range(row['wall'], 0)} | {statistics.mean(row['trials']):.1f} | "
                     f"{statistics.mean(row['epochs']):.0f} |")
    ref = rows.get(REFERENCE)
    if ref:
        lines += ["", f"ratios to {REFERENCE} (mean / mean). Micro-F1: higher is better; epochs and wall time: "
                      "lower is better; epochs to target only where both reached it", "",
                  f"| contender | best val micro-F1 | best after {half} epochs | epochs to target | wall time |",
                  "|---|---|---|---|---|"]

        def ratio(a: Sequence[float], b: Sequence[float], digits: int = 2) -> str:
            return f"{statistics.mean(a) / statistics.mean(b):.{digits}f}x" if a and b else "n/a"

        for name, row in rows.items():
            lines.append(f"| {name} | {ratio(row['best'], ref['best'], 3)} | {ratio(row['half'], ref['half'], 3)} | "
                         f"{ratio(row['reached'], ref['reached'])} | {ratio(row['wall'], ref['wall'])} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import keras
        import keras_tuner
        import optuna
        import tensorflow as tf

        versions = (f"optuna {optuna.__version__}, keras {keras.__version__}, keras-tuner {keras_tuner.__version__}, "
                    f"tensorflow {tf.__version__}")
    except ImportError:  # pragma: no cover
        versions = ""
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {versions}; no GPU "
            f"(CUDA_VISIBLE_DEVICES=''); load average now {load}")


def parent(args: argparse.Namespace) -> int:
    contenders = args.contenders
    unknown = [c for c in contenders if c not in CONTENDERS]
    if unknown:
        print(f"error: --contenders: got {', '.join(unknown)}; expected some of {', '.join(CONTENDERS)}",
              file=sys.stderr)
        return 2
    print(f"machine: {machine()}", flush=True)
    command = "python bench/search_efficiency.py " + " ".join(sys.argv[1:])
    print(f"command: {command}", flush=True)
    print(f"debtags50: first {args.limit} training documents, whole validation split, max_len {args.max_len}, "
          f"vocab {args.vocab_size}; {args.max_epochs} epochs max per trial; budget {args.budget} epochs per "
          f"contender and repeat; {args.repeats} repeats (seeds 0..{args.repeats - 1})", flush=True)
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        for seed in range(args.repeats):
            for name in contenders:
                out = Path(tmp) / f"{name}-{seed}.json"
                argv = [sys.executable, __file__, "--child", name, "--seed", str(seed), "--result", str(out),
                        "--budget", str(args.budget), "--max-epochs", str(args.max_epochs), "--limit",
                        str(args.limit), "--max-len", str(args.max_len), "--vocab-size", str(args.vocab_size)]
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
                proc = subprocess.run(argv, env=env, capture_output=True, text=True)
                if proc.returncode != 0 or not out.is_file():
                    print(f"{name} seed {seed} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}",
                          file=sys.stderr, flush=True)
                    return 1
                result = json.loads(out.read_text())
                results.append(result)
                print(f"  seed {seed} {name:18s} best {result['best']:.4f}  trials {result['trials']:3d}  epochs "
                      f"{result['epochs']}  wall {result['wall_s']:.0f}s  "
                      f"(elapsed {time.perf_counter() - started:.0f}s)",
                      flush=True)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s; load average at the end "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    print(table(results, contenders), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "machine": machine(), "results": results},
                                              indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="repeats, seeds 0..N-1")
    p.add_argument("--budget", type=int, default=72, help="training epochs per contender and repeat")
    p.add_argument("--max-epochs", type=int, default=9, help="epochs of a full trial (Hyperband's max resource)")
    p.add_argument("--limit", type=int, default=2000, help="training documents (the first N of debtags50)")
    p.add_argument("--max-len", type=int, default=64, help="tokens per document")
    p.add_argument("--vocab-size", type=int, default=10000, help="vocabulary size")
    p.add_argument("--contenders", nargs="+", default=list(CONTENDERS), help="which contenders")
    p.add_argument("--json", default=None, help="also write every run's timeline here")
    p.add_argument("--table-from", default=None, metavar="JSON", help="only print the tables of an earlier --json")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.table_from:  # re-print the tables of an earlier run's --json
        saved = json.loads(Path(args.table_from).read_text())
        print(f"command: {saved['command']}\nmachine: {saved['machine']}\n")
        print(table(saved["results"], [c for c in CONTENDERS if any(r["contender"] == c for r in saved["results"])]))
        return 0
    if args.child:
        child(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
