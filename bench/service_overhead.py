"""Epoch time inside the service vs a bare ``model.fit`` of the same model on the same data, one run.

    python bench/service_overhead.py [--limit 2000] [--max-len 128] [--epochs 3] [--repeats 3]

Service: a real trial of a real SQLite study (``Objective`` with its whole-validation micro-F1 callback,
the NaN guard, optuna-integration's pruning callback, ``trial.report`` and the user-attribute writes).
Bare: ``model.fit(..., validation_data=(x_valid, y_valid))`` -- Keras' own validation pass over the same
split with the same batch size, so both sides do one forward pass over it per epoch. Same parameters, seed and
batch. Runs alternate (bare, service, bare, ...) and the median of the per-repeat ratios is printed.
Target: at most 1.03.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import optuna  # noqa: E402

from search.config import RunConfig  # noqa: E402
from search.data import embedding_matrix_for, load_dataset  # noqa: E402
from search.errors import TrialFailure  # noqa: E402
from search.model import InputShapes, build_model  # noqa: E402
from search.objective import PREDICT_BATCH, Objective  # noqa: E402
from search.runtime import seed_everything  # noqa: E402
from spaces import get_space  # noqa: E402
from storage import create_storage  # noqa: E402

PARAMS = {"batch_size": 64, "dropout": 0.3, "batch_norm": False, "hidden_units": 64, "learning_rate": 3e-3,
          "embedding_mode": "frozen"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    config = RunConfig(study="overhead", space="baseline", limit=args.limit, max_len=args.max_len,
                       epochs=args.epochs, pruner="none", save_models=False)
    ds = load_dataset(config.data, config.data_settings())
    emb = embedding_matrix_for(ds, config.embedding_dim)
    space = get_space("baseline")
    objective = Objective(config, space, {}, ds, emb, None, log=lambda m: None)
    shapes = objective.shapes
    params = space.suggest(optuna.trial.FixedTrial(PARAMS), {})

    def bare() -> float:
        seed_everything(config.seed)
        keras.backend.clear_session()
        model = build_model(params, shapes).model
        t0 = time.perf_counter()
        model.fit(ds.x_train, ds.y_train.astype("float32"), batch_size=PARAMS["batch_size"], epochs=args.epochs,
                  validation_data=(ds.x_valid, ds.y_valid.astype("float32")),
                  validation_batch_size=PREDICT_BATCH, verbose=0, shuffle=True)
        return time.perf_counter() - t0

    def service(tmp: str) -> float:
        storage = create_storage(f"sqlite:///{tmp}/bench.db")
        study = optuna.create_study(storage=storage, direction="maximize", pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=args.epochs), study_name=f"s{time.time_ns()}")
        study.enqueue_trial(PARAMS)
        fit_time: list[float] = []
        original = keras.Model.fit

        def timed_fit(self, *a, **k):  # time the same span as bare(): fit() alone, after the model is built
            t0 = time.perf_counter()
            try:
                return original(self, *a, **k)
            finally:
                fit_time.append(time.perf_counter() - t0)

        keras.Model.fit = timed_fit
        try:
            study.optimize(objective, n_trials=1, catch=(TrialFailure,))
        finally:
            keras.Model.fit = original
        assert study.trials[0].state == optuna.trial.TrialState.COMPLETE, study.trials[0].user_attrs
        return fit_time[0]

    ratios, bares, services = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        bare()  # warm-up: first graph tracing of the process
        for _ in range(args.repeats):
            b = bare()
            s = service(tmp)
            bares.append(b)
            services.append(s)
            ratios.append(s / b)
    n = len(ds.x_train)
    print(f"debtags50: {n} train / {len(ds.x_valid)} valid documents, max_len {args.max_len}, {args.epochs} epochs, "
          f"params {PARAMS}")
    print("| run | bare fit (s) | service (s) | ratio |\n|---|---|---|---|")
    for i, (b, s, r) in enumerate(zip(bares, services, ratios), 1):
        print(f"| {i} | {b:.2f} | {s:.2f} | {r:.3f} |")
    print(f"median ratio service / bare: {statistics.median(ratios):.3f} (target <= 1.03)")


if __name__ == "__main__":
    main()
