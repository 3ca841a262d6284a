"""The main job end to end on SQLite: trials complete and prune, resume, refusals, NaN, interrupt."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from clihelpers import assert_one_line_error, run_cli

TINY = ["--limit", "64", "--max-len", "16", "--vocab-size", "800", "--epochs", "2", "--no-progress"]


def _study(db: Path, name: str = "attn") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished `attn` study, shared by the tests that only read it."""
    work = tmp_path_factory.mktemp("launch")
    result = run_cli("search.launch", "--study", "attn", "--trials", "3", *TINY, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "created study 'attn'" in result.stdout
    assert "best " in result.stdout and "python -m search.dashboard" in result.stdout
    assert "epoch 2/2" in result.stdout and "val micro-F1" in result.stdout
    # it ends with the best trial beside the TF-IDF reference, fitted on the same documents' raw text
    assert re.search(r"^TF-IDF \+ logistic regression \(raw text, the reference\): validation micro-F1 0\.\d{4}; "
                     r"best trial \d+: 0\.\d{4} \([+-]\d+\.\d points, (not )?better than the reference",
                     result.stdout, flags=re.MULTILINE), result.stdout
    return work


def test_trials_complete_with_records(finished: Path) -> None:
    study = _study(finished / "studies.db")
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(trials) >= 3
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete
    for t in complete:
        attrs = t.user_attrs
        assert 0.0 <= t.value <= 1.0
        assert t.value == pytest.approx(max(e["val_micro_f1_tuned"] for e in attrs["epochs"]))
        assert len(attrs["epochs"]) == 2 and len(attrs["epoch_seconds"]) == 2
        assert 0.0 < attrs["threshold"] < 1.0
        assert attrs["trainable_params"] > 0
        assert attrs["worker"]["backend"] == "tensorflow" and attrs["worker"]["host"]
        # the default CPU worker: every core it may use, TensorFlow's pools split between ops
        cores = len(os.sched_getaffinity(0))
        assert attrs["worker"]["threads"] == cores
        assert attrs["worker"]["op_threads"] == [max(1, cores // 2), min(2, cores)]
        assert "degenerate_attention" in attrs["diagnostics"]
        assert t.params["attention_position"] in ("none", "embedding", "rnn", "conv", "pooled", "label")
        assert ("num_heads" in t.params) == (t.params["attention_position"] in ("embedding", "rnn"))
    assert study.user_attrs["run_config"]["limit"] == 64
    best = study.best_trial
    artifact = best.user_attrs["model_artifact_id"]
    model_file = finished / "studies_artifacts" / artifact
    assert model_file.is_file() and zipfile.is_zipfile(model_file)  # the best model, not one of the trial's plots
    assert {"config.json", "model.weights.h5"} <= set(zipfile.ZipFile(model_file).namelist())  # a .keras archive


def test_optuna_cli_reads_the_study(finished: Path) -> None:
    optuna_cli = Path(sys.executable).with_name("optuna")
    proc = subprocess.run([str(optuna_cli), "trials", "--study-name", "attn", "--storage",
                           "sqlite:///studies.db", "-f", "json"], cwd=finished, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) >= 3 and {"number", "value", "state"} <= set(rows[0])


def test_replay_reproduces_a_trial(finished: Path) -> None:
    study = _study(finished / "studies.db")
    number = next(t.number for t in study.trials if t.state == TrialState.COMPLETE)
    result = run_cli("search.launch", "--study", "attn", "--replay", str(number), *TINY, cwd=finished)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith(f"replay of trial {number}"))
    replayed = float(line.split("value ")[1].split(";")[0])
    assert replayed == pytest.approx(study.trials[number].value, abs=1e-3)


def test_resume_and_refuse_changed_data(finished: Path, tmp_path: Path) -> None:
    work = tmp_path
    db = finished / "studies.db"
    (work / "studies.db").write_bytes(db.read_bytes())
    copy = _study(work / "studies.db")
    before = len(copy.trials)
    # a study made with another pruner (an earlier default, say) resumes without --pruner, keeping its own
    copy.set_user_attr("run_config", copy.user_attrs["run_config"] | {"pruner": "median"})
    # --trials and --timeout may change: the study holds the new values, for every worker
    # (one more than the first launch's three trials and the strong start's fourth, still waiting: so the
    # resumed run samples a trial of its own)
    result = run_cli("search.launch", "--study", "attn", "--trials", "5", "--timeout", "600", *TINY, cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming study 'attn'" in result.stdout
    study = _study(work / "studies.db")
    assert study.user_attrs["run_config"]["trials"] == 5 and study.user_attrs["run_config"]["timeout"] == 600
    assert study.user_attrs["run_config"]["pruner"] == "median"
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) >= 5
    assert len(study.trials) > before
    # resumed sampling does not repeat the first launch's start-up points
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == len(params)

    n = len(study.trials)
    changed = [a if a != "16" else "24" for a in TINY]  # another max_len: another dataset fingerprint
    refused = run_cli("search.launch", "--study", "attn", "--trials", "9", *changed, cwd=work)
    assert_one_line_error(refused, "data_fingerprint", "expected the same data")
    assert len(_study(work / "studies.db").trials) == n


@pytest.fixture(scope="module")
def resumable(finished: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the finished study's store, for launches that must be refused without touching it."""
    work = tmp_path_factory.mktemp("resume")
    (work / "studies.db").write_bytes((finished / "studies.db").read_bytes())
    return work


# Each flag that defines a study, changed from the `finished` study's launch (TINY, the defaults otherwise).
CHANGED = {
    "--pruner": ["--pruner", "median"],
    "--sampler": ["--sampler", "random"],
    "--seed": ["--seed", "7"],
    "--set": ["--set", "rnn_layers=2"],
    "--epochs": ["--epochs", "1"],
    "--no-save-models": ["--no-save-models"],
}


@pytest.mark.parametrize("flag", list(CHANGED))
def test_resume_with_a_changed_flag_is_refused_and_writes_nothing(resumable: Path, flag: str) -> None:
    db = resumable / "studies.db"
    before, files = db.read_bytes(), sorted(p.name for p in resumable.iterdir())
    result = run_cli("search.launch", "--study", "attn", "--trials", "3", *TINY, *CHANGED[flag], cwd=resumable)
    assert_one_line_error(result, f"error: {flag}: study 'attn' was created with", "expected the same value")
    assert db.read_bytes() == before  # nothing written (and nothing left in a write-ahead log beside it)
    assert sorted(p.name for p in resumable.iterdir()) == files


def test_a_study_whose_pruner_steps_may_count_otherwise_runs_no_trials(tmp_path: Path) -> None:
    """A study made before its pruner steps were recorded (no ``pruner_steps`` attribute), with two steps
    an epoch and a pruner: its intermediate values may sit at other steps than today's trials', so neither
    a launch nor a worker runs trials in it; a replay, which reports to no pruner, still runs."""
    every = ["--report-every", "32", *TINY]  # 64 training documents: two report intervals an epoch
    made = run_cli("search.launch", "--study", "attn", "--trials", "1", *every, cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    db = tmp_path / "studies.db"
    # plain sqlite3, no optuna storage held open in this process (its WAL would hide the change from the
    # bytes compared below)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        where = "FROM study_user_attributes WHERE key = 'pruner_steps'"
        assert conn.execute(f"SELECT value_json {where}").fetchall() == [('"training-intervals"',)]
        assert conn.execute(f"DELETE {where}").rowcount == 1
    before = db.read_bytes()
    for module, argv in (("search.launch", ["--study", "attn", "--trials", "3", *every]),
                         ("search.worker", ["--study", "attn", "--storage", "sqlite:///studies.db"])):
        result = run_cli(module, *argv, cwd=tmp_path)
        assert_one_line_error(result, "study 'attn'", "pruner_steps", "no record of what its pruner steps count",
                              "2 times in a first epoch", "expected a study whose steps count 'training-intervals'")
        assert db.read_bytes() == before, module
    replay = run_cli("search.launch", "--study", "attn", "--replay", "0", *every, cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert "replay of trial 0" in replay.stdout


@pytest.mark.parametrize(("stored", "pruner", "reports_per_epoch"), [
    ("training-intervals", "hyperband", 4),  # recorded: today's count
    (None, "none", 4),  # nothing is pruned: no rung to miss
    (None, "hyperband", 1),  # one interval an epoch: step = epoch = report in every version
])
def test_pruner_steps_that_agree_are_not_refused(stored: str | None, pruner: str, reports_per_epoch: int) -> None:
    from search._study import _check_pruner_steps

    _check_pruner_steps("attn", stored, pruner, reports_per_epoch)


def test_bad_inputs_write_nothing(tmp_path: Path) -> None:
    cases = [
        (["--study", "nope"], "unknown study space 'nope'"),
        (["--study", "attn", "--gpus", "0,x"], "--gpus"),
        (["--study", "attn", "--data", str(tmp_path / "missing.jsonl")], "file not found"),
        (["--study", "attn", "--storage", "mongodb://x"], "mongodb"),
        (["--study", "ablation"], "--from-study"),
        (["--study", "ablation", "--from-study", "nothing"], "no such study"),
    ]
    for argv, needle in cases:
        result = run_cli("search.launch", *argv, *TINY, cwd=tmp_path)
        assert_one_line_error(result, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no artifact folder: nothing written


def test_nan_trial_fails_and_the_worker_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial whose loss goes NaN fails with its reason; the worker's loop goes on to the next trial.

    The factory refuses parameters that would blow up, so the NaN comes from a model whose output layer
    multiplies by NaN, built for the first trial only; everything else is the real objective.
    """
    import keras

    import search.objective as objective_module
    from search.config import RunConfig
    from search.data import load_dataset
    from search.worker import run_objective
    from spaces import get_space

    space = get_space("baseline")
    real_build = space.build
    calls = []

    def build(params, shapes, **kwargs):
        built = real_build(params, shapes, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            inputs = built.model.inputs
            outputs = keras.layers.Lambda(lambda t: t * float("nan"))(built.model.outputs[0])
            built.model = keras.Model(inputs, outputs)
            built.model.compile(optimizer="adam", loss="binary_crossentropy")
        return built

    monkeypatch.setattr(space, "build", build)
    config = RunConfig(study="nan", space="baseline", limit=64, max_len=16, vocab_size=800, epochs=1)
    dataset = load_dataset(config.data, config.data_settings())
    objective = objective_module.Objective(config, space, {}, dataset, None, log=lambda m: None)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"embedding_mode": "random"})
    study.enqueue_trial({"embedding_mode": "random"})
    run_objective(study, objective, target=1, log=lambda m: None)  # the worker's loop: one trial to finish
    first, second = study.trials
    assert first.state == TrialState.FAIL
    assert first.user_attrs["failure_reason"].startswith("NaN loss at epoch 1")
    assert second.state == TrialState.COMPLETE and second.value > 0


def _has_running_trial(db: Path) -> bool:
    """Whether the launcher's store holds a RUNNING trial, read without writing: opening it through
    Optuna while the launcher is still creating it would write the schema too, and the launcher would
    then find its tables already there."""
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'RUNNING'").fetchone()[0] > 0
    except sqlite3.Error:  # not created yet, or busy: look again
        return False


def test_interrupt_leaves_no_running_trial(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "search.launch", "--study", "attn", "--trials", "50", "--limit", "600",
            "--max-len", "32", "--vocab-size", "800", "--epochs", "3", "--no-progress"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "studies.db"
    deadline = time.monotonic() + 300  # a loaded 2-core machine starts TensorFlow slowly
    running = False
    try:
        while time.monotonic() < deadline and not running:
            time.sleep(0.3)
            if proc.poll() is not None:  # it ended before a trial was seen running: say why
                _, err = proc.communicate()
                raise AssertionError(f"the launcher exited with status {proc.returncode}: {err[-3000:]}")
            running = _has_running_trial(db)
        assert running, "no trial started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert "run the same command again to resume" in err
    assert "the reference" not in out  # stopping does not wait for the reference to be fitted
    study = _study(db)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert failed and all("interrupted" in t.user_attrs.get("failure_reason", "") or
                          "stopped" in t.user_attrs.get("failure_reason", "") for t in failed)


def test_an_open_ended_study_given_no_trials_nor_timeout_gets_the_default_budget() -> None:
    from search._study import trial_target
    from search.config import BUDGETED_TRIALS, DEFAULT_BUDGET_SECONDS, DEFAULT_TRIALS, RunConfig
    from search.launch import with_default_budget
    from spaces import get_space

    attn, ablation = get_space("attn"), get_space("ablation")
    plain = RunConfig(study="attn", space="attn")
    budgeted = with_default_budget(plain, attn, {})
    assert budgeted.timeout == DEFAULT_BUDGET_SECONDS and trial_target(budgeted, attn, {}) == BUDGETED_TRIALS
    counted = RunConfig(study="attn", space="attn", trials=5)
    assert with_default_budget(counted, attn, {}) == counted and trial_target(counted, attn, {}) == 5
    timed = RunConfig(study="attn", space="attn", timeout=60.0)
    assert with_default_budget(timed, attn, {}).timeout == 60.0
    design = RunConfig(study="ablation", space="ablation")
    assert with_default_budget(design, ablation, {"replicates": 3}).timeout is None
    assert trial_target(RunConfig(study="attn", space="attn"), attn, {}) == DEFAULT_TRIALS


def test_cpu_workers_share_out_the_cores_without_oversubscribing_them() -> None:
    from search.launch import cpu_placement

    assert cpu_placement(1, None, [0, 1]) == [[]]  # one worker: every core (its own default, split pools)
    assert cpu_placement(1, 2, [0, 1]) == [[]]
    assert cpu_placement(2, None, [0, 1]) == [["--threads", "1", "--cpus", "0"], ["--threads", "1", "--cpus", "1"]]
    assert cpu_placement(2, None, [4, 5, 6, 7]) == [["--threads", "2", "--cpus", "4,5"],
                                                    ["--threads", "2", "--cpus", "6,7"]]
    assert cpu_placement(1, 1, [0, 1]) == [["--threads", "1", "--cpus", "0"]]
    # more threads than there are cores: the user's choice, but no worker is pinned on another's core
    assert cpu_placement(3, None, [0, 1]) == [["--threads", "1"]] * 3
    assert cpu_placement(2, 2, [0, 1]) == [["--threads", "2"]] * 2
    assert cpu_placement(2, None, [0, 1], on_gpus=True) == [[], []]  # the GPU does their numerical work
    assert cpu_placement(2, 1, [0, 1], on_gpus=True) == [["--threads", "1", "--cpus", "0"],
                                                          ["--threads", "1", "--cpus", "1"]]


def test_tensorflow_pools_run_two_ops_at_a_time_each_on_half_the_threads() -> None:
    from search.runtime import op_threads

    assert [op_threads(n) for n in (1, 2, 3, 4, 16)] == [(1, 1), (1, 2), (1, 2), (2, 2), (8, 2)]
    with pytest.raises(ValueError, match="got 0 threads; expected at least 1"):
        op_threads(0)


def test_a_two_core_worker_process_splits_tensorflow_pools_between_ops() -> None:
    code = ("import os\n"
            "from search.runtime import limit_cpu_threads\n"
            "limit_cpu_threads(2)\n"
            "env = os.environ\n"
            "assert (env['TF_NUM_INTRAOP_THREADS'], env['TF_NUM_INTEROP_THREADS']) == ('1', '2'), env\n"
            "assert env['OMP_NUM_THREADS'] == env['MKL_NUM_THREADS'] == '2'  # one-op-at-a-time backends: all\n"
            "assert 'xla_cpu_multi_thread_eigen' not in env.get('XLA_FLAGS', '')\n"
            "from search.runtime import environment_record\n"
            "record = environment_record()\n"
            "assert record['threads'] == 2 and record['op_threads'] == [1, 2], record\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_pinned_worker_process_runs_on_its_cores_with_pools_of_its_size() -> None:
    code = ("import os, sys\n"
            "from search.runtime import limit_cpu_threads\n"
            "core = min(os.sched_getaffinity(0))\n"
            "limit_cpu_threads(1, {core})\n"
            "assert os.sched_getaffinity(0) == {core}, os.sched_getaffinity(0)\n"
            "assert os.environ['TF_NUM_INTRAOP_THREADS'] == os.environ['OMP_NUM_THREADS'] == '1'\n"
            "assert '--xla_cpu_multi_thread_eigen=false' in os.environ['XLA_FLAGS']\n"
            "import keras\n"
            "try:\n"
            "    limit_cpu_threads(1)\n"
            "except RuntimeError as exc:\n"
            "    assert 'before keras is imported' in str(exc)\n"
            "else:\n"
            "    sys.exit('no refusal after keras loaded')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
