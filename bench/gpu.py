"""GPU throughput of the seed's RCNN: every installed Keras backend, float32 vs mixed precision, against
the same network written directly in PyTorch; and trials per hour with one vs two trials per GPU.

    python bench/gpu.py                          # on a GPU machine: the seed's shapes
    python bench/gpu.py --tiny --cpu             # anywhere: tiny shapes on the CPU (what the tests run)
    python bench/gpu.py --backends torch jax --precisions float32 --no-trials

The data is synthetic, of the seed's exact shape (shared/seed/README.md): 8,066 training and 1,573
validation documents of 3,000 token ids, vocabulary 50,000, 100-d frozen embedding, 50 labels. The model
is ``PRESETS["seed_rcnn"]`` from the service's model factory (2 x BiLSTM(128) -> Conv1D(128, 1..5) ->
average + max pooling -> Dense(50, sigmoid), nothing masked). Each Keras backend runs in its own process
with ``KERAS_BACKEND`` set; backends that are not installed are skipped. Per run: one warm-up epoch on a
few batches (tracing / compilation), then one timed epoch over every training document; documents per
second; whether the LSTMs ran on cuDNN (the backend's fused cuDNN function was called and its generic loop
was not; for PyTorch, ``aten::_cudnn_rnn`` in the profiler). The reference is the same network in
PyTorch (``nn.LSTM``, cuDNN; mixed precision with ``torch.autocast`` + ``GradScaler``); every Keras run is
printed as its speed relative to the reference at the same precision (1.00 = as fast as PyTorch).

Trials per hour: a trial is the service's own ``Objective.run`` (build, one epoch, whole-validation
micro-F1) of the seed RCNN; measured with one trial process on the GPU, then two at once on the same GPU
(as ``search.launch --gpus 0,0``), on the fastest Keras backend of this run (or ``--trial-backend``).

Without a GPU (and without ``--cpu``) it prints why and exits 0.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed")


@dataclass(frozen=True)
class Shapes:
    train: int = 8066
    valid: int = 1573
    seq_len: int = 3000
    vocab: int = 50_000
    labels: int = 50
    embedding_dim: int = 100
    hidden: int = 128
    filters: int = 128
    batch: int = 64
    warmup_batches: int = 3


TINY = Shapes(train=96, valid=48, seq_len=24, vocab=300, labels=50, embedding_dim=16, hidden=8, filters=8, batch=32,
              warmup_batches=1)


# ----------------------------------------------------------------------------------------------------
# Synthetic data of the seed's shape (the same in every process: fixed seed)


def synthetic(shapes: Shapes, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    labels_per_doc = 3.7 / shapes.labels

    def split(n: int) -> tuple[Any, Any]:
        x = rng.integers(1, shapes.vocab, size=(n, shapes.seq_len), dtype=np.int32)
        y = (rng.random((n, shapes.labels)) < labels_per_doc).astype(np.float32)
        return x, y

    x_train, y_train = split(shapes.train)
    x_valid, y_valid = split(shapes.valid)
    matrix = rng.normal(0, 0.1, size=(shapes.vocab, shapes.embedding_dim)).astype(np.float32)
    return {"x_train": x_train, "y_train": y_train, "x_valid": x_valid, "y_valid": y_valid, "matrix": matrix}


def seed_params(shapes: Shapes, mixed: bool) -> dict[str, Any]:
    from search.model import PRESETS

    return {**PRESETS["seed_rcnn"], "hidden_units": shapes.hidden, "conv_filters": shapes.filters,
            "batch_size": shapes.batch, "mixed_precision": mixed}


# ----------------------------------------------------------------------------------------------------
# Children: one Keras backend (both precisions), the PyTorch reference, one trial process


@contextlib.contextmanager
def cudnn_probe(backend: str) -> Iterator[dict[str, int]]:
    """Count calls of the backend's fused cuDNN LSTM and of its generic fallback (at trace time for
    TensorFlow and JAX, every call for PyTorch); the patched functions are restored on exit."""
    import keras.src.backend as kb

    counts = {"cudnn": 0, "fallback": 0}
    patched: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, wrapper: Any) -> None:
        patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, wrapper)

    if backend in ("tensorflow", "torch"):
        module = importlib.import_module(f"keras.src.backend.{backend}.rnn")
        cudnn = module._cudnn_lstm

        def counted_cudnn(*args: Any, **kwargs: Any) -> Any:
            out = cudnn(*args, **kwargs)
            counts["cudnn"] += 1
            return out

        patch(module, "_cudnn_lstm", counted_cudnn)
        if backend == "torch":
            fallback = module._fallback_lstm

            def counted_fallback(*args: Any, **kwargs: Any) -> Any:
                counts["fallback"] += 1
                return fallback(*args, **kwargs)

            patch(module, "_fallback_lstm", counted_fallback)
    dispatch = kb.lstm

    def counted_lstm(*args: Any, **kwargs: Any) -> Any:
        try:
            out = dispatch(*args, **kwargs)
        except NotImplementedError:  # the layer then runs its generic loop
            counts["fallback"] += 1
            raise
        if backend == "jax":  # the JAX backend's lstm() returns only through jax.experimental.rnn (cuDNN)
            counts["cudnn"] += 1
        return out

    patch(kb, "lstm", counted_lstm)
    try:
        yield counts
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def _device(backend: str) -> str:
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return gpus[0].name if gpus else "cpu"
        if backend == "jax":
            import jax

            return str(jax.devices()[0])
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception as exc:  # a record only
        return f"unknown ({exc})"


def keras_child(shapes: Shapes, precisions: Sequence[str]) -> dict[str, Any]:
    import keras

    backend = keras.backend.backend()
    data = synthetic(shapes)
    with cudnn_probe(backend) as counts:
        return {"rows": [_keras_epoch(shapes, data, precision, backend, counts) for precision in precisions]}


def _keras_epoch(shapes: Shapes, data: dict[str, Any], precision: str, backend: str, counts: dict[str, int]
                 ) -> dict[str, Any]:
    import keras

    from search.model import InputShapes, build_model

    input_shapes = InputShapes(seq_len=shapes.seq_len, vocab_size=shapes.vocab, n_labels=shapes.labels,
                               embedding_dim=shapes.embedding_dim, embedding_matrix=data["matrix"])
    warm = shapes.batch * shapes.warmup_batches
    counts.update(cudnn=0, fallback=0)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    built = build_model(seed_params(shapes, precision == "mixed"), input_shapes)
    model = built.model
    model.fit(data["x_train"][:warm], data["y_train"][:warm], batch_size=shapes.batch, epochs=1, verbose=0)
    _sync(backend)
    t0 = time.perf_counter()
    model.fit(data["x_train"], data["y_train"], batch_size=shapes.batch, epochs=1, verbose=0)
    _sync(backend)
    seconds = time.perf_counter() - t0
    return {"name": f"keras/{backend}", "backend": backend, "precision": precision, "epoch_s": seconds,
            "docs_per_s": shapes.train / seconds, "cudnn": counts["cudnn"] > 0 and counts["fallback"] == 0,
            "cudnn_calls": dict(counts), "device": _device(backend), "policy": built.diagnostics.get("dtype_policy")}


def _sync(backend: str) -> None:
    """Wait for queued device work, so a timing covers it."""
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    elif backend == "jax":
        import jax

        (jax.device_put(0.0) + 0).block_until_ready()


def torch_reference_child(shapes: Shapes, precisions: Sequence[str], cpu: bool) -> dict[str, Any]:
    import numpy as np
    import torch
    from torch import nn

    device = torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")
    data = synthetic(shapes)

    class SeedRCNN(nn.Module):
        """The seed's model 1 in PyTorch: frozen embedding -> dropout -> 2 x BiLSTM -> Conv1D(k=1..5) ->
        average + max pooling -> Linear (logits; the loss applies the sigmoid)."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding.from_pretrained(torch.from_numpy(data["matrix"]), freeze=True)
            self.dropout = nn.Dropout(0.5)
            self.lstm = nn.LSTM(shapes.embedding_dim, shapes.hidden, num_layers=2, bidirectional=True,
                                batch_first=True)
            self.convs = nn.ModuleList(nn.Conv1d(2 * shapes.hidden, shapes.filters, k) for k in range(1, 6))
            self.output = nn.Linear(10 * shapes.filters, shapes.labels)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.lstm(self.dropout(self.embedding(x)))
            h = h.transpose(1, 2)  # (batch, features, time) for Conv1d
            pooled = []
            for conv in self.convs:
                c = torch.relu(conv(h))
                pooled += [c.mean(dim=2), c.amax(dim=2)]
            return self.output(torch.cat(pooled, dim=1))

    x_all = torch.from_numpy(data["x_train"]).long()
    y_all = torch.from_numpy(data["y_train"])
    rows = []
    for precision in precisions:
        torch.manual_seed(0)
        model = SeedRCNN().to(device)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        loss_fn = nn.BCEWithLogitsLoss()
        mixed = precision == "mixed"
        amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        scaler = torch.amp.GradScaler(device.type, enabled=mixed and device.type == "cuda")

        def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=mixed):
                loss = loss_fn(model(xb), yb)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

        def epoch(n: int) -> None:
            order = torch.randperm(n)
            for start in range(0, n, shapes.batch):
                idx = order[start:start + shapes.batch]
                step(x_all[idx].to(device, non_blocking=True), y_all[idx].to(device, non_blocking=True))

        model.train()
        epoch(shapes.batch * shapes.warmup_batches)
        with torch.profiler.profile() as prof:  # one step: which LSTM kernel ran
            step(x_all[:shapes.batch].to(device), y_all[:shapes.batch].to(device))
        names = {e.key for e in prof.key_averages()}
        cudnn = any("cudnn_rnn" in n for n in names)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        epoch(shapes.train)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        rows.append({"name": "pytorch reference", "backend": "pytorch", "precision": precision, "epoch_s": seconds,
                     "docs_per_s": shapes.train / seconds, "cudnn": cudnn,
                     "cudnn_calls": {"profiler_cudnn_rnn": cudnn},
                     "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                     "policy": f"autocast {str(amp_dtype).split('.')[-1]}" if mixed else "float32"})
        del model, optimizer
        np.random.seed(0)
    return {"rows": rows}


def trial_child(shapes: Shapes, precision: str, barrier: str | None = None) -> dict[str, Any]:
    """One trial as a worker runs it: the service's Objective.run (build, fit one epoch, validation F1)."""
    import numpy as np
    import optuna

    from search.config import RunConfig
    from search.data import Dataset
    from search.objective import Objective
    from spaces import get_space

    data = synthetic(shapes)
    dataset = Dataset(name="synthetic", source="synthetic", x_train=data["x_train"],
                      y_train=data["y_train"].astype(np.uint8), x_valid=data["x_valid"],
                      y_valid=data["y_valid"].astype(np.uint8), label_names=[f"l{i}" for i in range(shapes.labels)],
                      fingerprint="synthetic")
    config = RunConfig(study="bench-gpu", space="seed", epochs=1, embedding_dim=shapes.embedding_dim,
                       save_models=False, limit=None)
    objective = Objective(config, get_space("seed"), {}, dataset, data["matrix"], None, log=lambda m: None)
    if barrier:  # start together with the other trial process(es) on this GPU
        Path(barrier + f".ready-{os.getpid()}").touch()
        deadline = time.monotonic() + 600
        while not Path(barrier).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    t0 = time.perf_counter()
    params = seed_params(shapes, precision == "mixed")
    # A FixedTrial reports to no pruner and stores nothing: one trial's work, timed alone.
    result = objective.run(optuna.trial.FixedTrial(params), params, 0, store=False)
    return {"trial_s": time.perf_counter() - t0, "value": result.value}


# ----------------------------------------------------------------------------------------------------
# The parent


def installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def gpu_names() -> list[str]:
    """GPUs nvidia-smi lists (no framework import: the parent stays light)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[1].split("(UUID")[0].strip() for line in out.splitlines() if line.startswith("GPU ")]


def _child_env(backend: str | None, cpu: bool) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore",
               TF_FORCE_GPU_ALLOW_GROWTH="true", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    if backend:
        env["KERAS_BACKEND"] = backend
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
        env["JAX_PLATFORMS"] = "cpu"
    return env


def _spawn(kind: str, args: argparse.Namespace, out: Path, backend: str | None, extra: Sequence[str] = ()
           ) -> subprocess.Popen:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--result", str(out),
            "--precisions", *args.precisions, *(["--tiny"] if args.tiny else []), *(["--cpu"] if args.cpu else []),
            *(["--docs", str(args.docs)] if args.docs else []), *extra]
    return subprocess.Popen(argv, env=_child_env(backend, args.cpu), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _collect(proc: subprocess.Popen, out: Path, label: str, timeout: float) -> dict[str, Any] | None:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        print(f"  {label}: stopped after {timeout:.0f}s (--timeout)", flush=True)
        return None
    if proc.returncode != 0 or not out.is_file():
        tail = "\n    ".join(err.strip().splitlines()[-8:])
        print(f"  {label}: failed (exit {proc.returncode}):\n    {tail}", flush=True)
        return None
    return json.loads(out.read_text())


def _table(rows: list[dict[str, Any]]) -> str:
    reference = {r["precision"]: r for r in rows if r["backend"] == "pytorch"}
    lines = ["| run | precision | epoch s | docs/s | speed vs PyTorch (same precision) | LSTM on cuDNN | device |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = reference.get(r["precision"])
        ratio = f"{r['docs_per_s'] / ref['docs_per_s']:.2f}x" if ref else "n/a (PyTorch not installed)"
        lines.append(f"| {r['name']} | {r['precision']} | {r['epoch_s']:.2f} | {r['docs_per_s']:.1f} | {ratio} | "
                     f"{'yes' if r['cudnn'] else 'no'} | {r['device']} |")
    return "\n".join(lines)


def parent(args: argparse.Namespace) -> int:
    shapes = _shapes(args)
    gpus = [] if args.cpu else gpu_names()
    if not gpus and not args.cpu:
        print("bench/gpu.py: no GPU found (nvidia-smi lists none), so nothing was measured. On a GPU machine run "
              "`python bench/gpu.py`; to exercise the benchmark here run `python bench/gpu.py --tiny --cpu`.")
        return 0
    backends = [b for b in args.backends if installed(b)]
    missing = [b for b in args.backends if not installed(b)]
    print(f"device: {', '.join(gpus) if gpus else 'CPU (--cpu)'}; Python {sys.version.split()[0]}")
    print(f"shapes: {shapes.train} train / {shapes.valid} valid documents x {shapes.seq_len} tokens, vocabulary "
          f"{shapes.vocab}, {shapes.labels} labels, embedding {shapes.embedding_dim}, BiLSTM {shapes.hidden}, "
          f"filters {shapes.filters}, batch {shapes.batch}{' (--tiny)' if args.tiny else ''}")
    if missing:
        print(f"skipped (not installed): {', '.join(missing)}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        runs = [(f"keras/{b}", "keras", b) for b in backends]
        if installed("torch") and not args.no_reference:
            runs.append(("pytorch reference", "torch", None))
        elif not args.no_reference:
            print("skipped: the PyTorch reference (torch not installed); ratios are n/a")
        for label, kind, backend in runs:
            out = Path(tmp) / f"{kind}-{backend}.json"
            print(f"  running {label} ({', '.join(args.precisions)})...", flush=True)
            result = _collect(_spawn(kind, args, out, backend), out, label, args.timeout)
            if result:
                rows += result["rows"]
        print()
        print(_table(rows), flush=True)
        trial_rows = []
        if not args.no_trials:
            trial_rows = _trials(args, rows, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps({"shapes": asdict(shapes), "device": gpus or ["cpu"], "rows": rows,
                                               "trials": trial_rows}, indent=1))
    return 0


def _trials(args: argparse.Namespace, rows: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    keras_rows = [r for r in rows if r["backend"] in BACKENDS and r["precision"] == args.precisions[0]]
    backend = args.trial_backend or (max(keras_rows, key=lambda r: r["docs_per_s"])["backend"] if keras_rows
                                     else None)
    if backend is None or not installed(backend):
        print("\ntrials per hour: skipped (no Keras backend ran)")
        return []
    precision = args.precisions[0]
    print(f"\ntrials per hour (service Objective.run of the seed RCNN, 1 epoch + validation F1; keras/{backend}, "
          f"{precision}):", flush=True)
    results = []
    for procs in (1, 2):
        outs = [tmp / f"trial-{procs}-{i}.json" for i in range(procs)]
        barrier = tmp / f"go-{procs}"
        started = [_spawn("trial", args, out, backend, ["--trial-precision", precision, "--barrier", str(barrier)])
                   for out in outs]
        deadline = time.monotonic() + args.timeout
        while (len(list(tmp.glob(f"go-{procs}.ready-*"))) < procs and time.monotonic() < deadline
               and all(p.poll() is None for p in started)):
            time.sleep(0.05)
        barrier.touch()  # every process has imported and built its data: the trials start together
        t0 = time.perf_counter()
        done = [_collect(p, out, f"trial process {i + 1}/{procs}", args.timeout)
                for i, (p, out) in enumerate(zip(started, outs))]
        wall = time.perf_counter() - t0
        if not all(done):
            continue
        trial_s = [d["trial_s"] for d in done]
        # steady state: each process runs trials back to back, so a GPU finishes `procs` trials per the
        # slowest process's trial time (process start-up, imports and data are paid once per worker)
        per_hour = procs * 3600 / max(trial_s)
        results.append({"trials_per_gpu": procs, "trial_s": trial_s, "per_hour": per_hour, "wall_s": wall})
    if results:
        base = results[0]["per_hour"]
        print("| trials at once on the GPU | seconds per trial | trials per hour | vs one at a time |")
        print("|---|---|---|---|")
        for r in results:
            print(f"| {r['trials_per_gpu']} | {statistics.mean(r['trial_s']):.2f} | {r['per_hour']:.0f} | "
                  f"{r['per_hour'] / base:.2f}x |")
    return results


def _shapes(args: argparse.Namespace) -> Shapes:
    shapes = TINY if args.tiny else Shapes()
    if args.docs:
        shapes = Shapes(**{**asdict(shapes), "train": args.docs})
    return shapes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="Keras backends to run")
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS), help="precisions")
    p.add_argument("--tiny", action="store_true", help="tiny shapes (seconds on a CPU)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even without a GPU")
    p.add_argument("--docs", type=int, default=None, help="training documents per timed epoch (default: all)")
    p.add_argument("--no-reference", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--no-trials", action="store_true", help="skip trials per hour")
    p.add_argument("--trial-backend", choices=BACKENDS, default=None,
                   help="Keras backend for trials per hour (default: the fastest of this run)")
    p.add_argument("--timeout", type=float, default=900, help="seconds one child process may run")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--child", choices=("keras", "torch", "trial"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    p.add_argument("--trial-precision", choices=PRECISIONS, default="float32", help=argparse.SUPPRESS)
    p.add_argument("--barrier", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child is None:
        return parent(args)
    shapes = _shapes(args)
    if args.child == "keras":
        result = keras_child(shapes, args.precisions)
    elif args.child == "torch":
        result = torch_reference_child(shapes, args.precisions, args.cpu)
    else:
        result = trial_child(shapes, args.trial_precision, args.barrier)
    Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, installed or not
    raise SystemExit(main())
