"""search.report on a tiny finished study: numbers present and consistent; refusals are one line, exit 2."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import optuna
import pytest

from clihelpers import assert_one_line_error, run_cli
from search._cli import run_main
from search.metrics import micro_f1
from search.record import TrialRecord
from search.report import Report, make_report
from search.report.__main__ import main

POSITIONS = ("none", "embedding", "rnn", "conv", "pooled", "label")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _quiet(message: str) -> None:
    pass


def _copy_db(source: Path, target: Path) -> str:
    """A consistent copy of a SQLite store in WAL mode (a file copy could miss the -wal file's pages)."""
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


@pytest.fixture(scope="module")
def report(studies: Path, tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("report")
    return make_report("attn", storage=f"sqlite:///{studies / 'studies.db'}", out=out, log=_quiet)


def _table_rows(markdown: str, first_cells: tuple[str, ...]) -> dict[str, list[str]]:
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in first_cells:
            rows[cells[0]] = cells
    return rows


def test_files_and_sections(report: Report) -> None:
    text = report.markdown.read_text()
    for heading in ("## Verdict", "## Test split", "## Ablation", "## Plots", "## Method"):
        assert heading in text
    assert set(report.plots) == {"history", "importances", "positions", "per_label"}
    for path in report.plots.values():
        assert path.parent == report.out and path.read_bytes()[:8] == PNG_MAGIC
        assert f"]({path.name})" in text  # linked from the markdown, relative
    assert "Student's t" in text and "1000 resamples" in text


def test_best_trial_is_rebuilt_and_scored(report: Report, studies: Path) -> None:
    study = optuna.load_study(study_name="attn", storage=f"sqlite:///{studies / 'studies.db'}")
    best = study.best_trial
    assert report.best.number == best.number
    assert report.best.threshold == TrialRecord.from_trial(best).threshold
    # the reloaded model reproduces the trial's validation score at its threshold
    assert report.best.valid_micro_f1 == pytest.approx(best.value, abs=1e-3)
    for key in ("micro_f1", "macro_f1", "precision_at_5", "micro_auc", "macro_auc"):
        assert 0.0 <= report.best.metrics[key] <= 1.0
    assert 0.0 <= report.baseline.metrics["micro_f1"] <= 1.0 and report.baseline.input == "raw text"
    rows = _table_rows(report.markdown.read_text(), (f"best trial {best.number} ({report.best.position})",))
    (cells,) = rows.values()
    assert cells[3] == f"{report.best.metrics['micro_f1']:.4f}" and cells[7] == f"{report.best.metrics['macro_auc']:.4f}"


def test_ablation_numbers(report: Report, studies: Path) -> None:
    ablation = report.ablation
    assert ablation is not None and [r.position for r in ablation.rows] == list(POSITIONS)
    study = optuna.load_study(study_name="ablation", storage=f"sqlite:///{studies / 'studies.db'}")
    evals = {(e.position, e.replicate): e for e in ablation.evals}
    assert len(evals) == 12
    from search.data import load_dataset
    from search.config import RunConfig

    config = RunConfig.from_json(study.user_attrs["run_config"])
    data = load_dataset(config.data, config.data_settings(), include_test=True)
    for row in ablation.rows:
        values = [t.value for t in study.trials if t.params.get("attention_position") == row.position]
        assert row.seeds == 2 and row.valid.estimate == pytest.approx(np.mean(values))
        assert row.valid.low <= row.valid.estimate <= row.valid.high  # equal when both seeds score the same
        tests = [micro_f1(data.y_test, evals[(row.position, r)].test_prob, evals[(row.position, r)].threshold)
                 for r in (0, 1)]
        assert row.test.estimate == pytest.approx(np.mean(tests))
        if row.position == "none":
            assert row.diff is None
            continue
        nones = [evals[("none", r)].metrics["micro_f1"] for r in (0, 1)]
        assert row.diff.estimate == pytest.approx(np.mean(tests) - np.mean(nones))
        assert row.diff.low <= row.diff.high
    assert ablation.row("pooled").degenerate and not ablation.row("label").degenerate
    assert ablation.row("pooled").uniform_delta == pytest.approx(0.0, abs=1e-9)  # an identity


def test_verdict_matches_the_table(report: Report) -> None:
    text = report.markdown.read_text()
    verdict = text.split("## Verdict", 1)[1].split("##", 1)[0].strip()
    assert verdict == report.verdict and "\n" not in verdict
    rows = _table_rows(text, POSITIONS)
    assert set(rows) == set(POSITIONS) and rows["none"][4] == "reference"
    for position in POSITIONS[1:]:
        diff, interval = re.fullmatch(r"([+-]\d+\.\d) (\[-?\d+\.\d, -?\d+\.\d\])", rows[position][4]).groups()
        # The verdict states every position's difference with its interval, exactly as the table does.
        said = re.search(rf"`{position}`[^`]*?(?:adds|costs)? ?([+-]?\d+\.\d) points[^`]*?95% CI (\[[^\]]+\])",
                         verdict)
        assert said, (position, verdict)
        number, said_interval = said.groups()
        assert said_interval == interval
        assert abs(float(number)) == abs(float(diff))
        if "adds" in said.group(0):
            assert float(diff) > 0 and float(interval[1:].split(",")[0]) > 0
        if "costs" in said.group(0):
            assert float(diff) < 0 and f"(difference {diff}, 95% CI {interval})" in said.group(0)
    assert "`pooled` attention attends over a single step" in verdict
    deep = re.search(r"Best deep model minus TF-IDF, test micro-F1: ([+-]\d+\.\d) (\[[^\]]+\])", text).groups()
    assert f"{deep[0]} points for the deep model (95% CI {deep[1]})" in verdict


def test_terminal_table(report: Report) -> None:
    shown = report.terminal()
    assert "test split:" in shown and "TF-IDF + logistic regression" in shown
    for position in POSITIONS:
        assert re.search(rf"^{position}\s+2\s+\d\.\d{{3}}", shown, re.M), shown
    assert "verdict: " + report.verdict in shown


def test_without_ablation_says_it_is_not_equal_budget(studies: Path, tmp_path: Path) -> None:
    url = _copy_db(studies / "studies.db", tmp_path / "studies.db")
    optuna.delete_study(study_name="ablation", storage=url)
    report = make_report("attn", storage=url, out=tmp_path / "out", artifacts=str(studies / "studies_artifacts"),
                         log=_quiet)
    assert report.ablation is None and report.pair is not None and not report.pair.equal_budget
    pair = report.pair
    assert pair.with_eval is not None and pair.without_eval is not None  # the best of each position is saved
    assert "not an equal-budget comparison" in report.verdict
    assert f"{100 * (pair.with_value - pair.without_value):+.1f} points on validation" in report.verdict
    expected = pair.with_eval.metrics["micro_f1"] - pair.without_eval.metrics["micro_f1"]
    assert pair.diff.estimate == pytest.approx(expected)
    assert f"{100 * expected:+.1f} points on test" in report.verdict
    assert "## Best with versus best without attention" in report.markdown.read_text()


def _empty_study(url: str) -> None:
    from search.config import RunConfig

    study = optuna.create_study(study_name="empty", storage=url, direction="maximize")
    study.set_user_attr("run_config", RunConfig(study="empty", space="attn").to_json())
    study.tell(study.ask(), state=optuna.trial.TrialState.PRUNED)


def test_refusals_are_one_line_exit_2(studies: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url = _copy_db(studies / "studies.db", tmp_path / "studies.db")
    _empty_study(url)
    optuna.create_study(study_name="foreign", storage=url)  # made by plain Optuna: no run configuration
    elsewhere = tmp_path / "elsewhere"  # no studies.db here: the default storage does not exist
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    cases = [
        (["--study", "nope", "--storage", url], "--study 'nope': no such study in the storage (studies there: "
                                                "ablation, attn, empty, foreign)"),
        (["--study", "foreign", "--storage", url], "--study 'foreign': was not created by search.launch "
                                                   "(no run_config); expected a study it started"),
        (["--study", "empty", "--storage", url], "--study 'empty': has no complete trial (1 pruned)"),
        (["--study", "attn", "--storage", url, "--ablation-study", "nope"], "--ablation-study 'nope': no such study"),
        (["--study", "attn", "--storage", url, "--ablation-study", "attn"], "uses space 'attn', not 'ablation'"),
        (["--study", "attn"], "default storage: SQLite file"),
        (["--study", "attn", "--storage", url, "--resamples", "0"], "expected a positive integer, got 0"),
        (["--storage", url], "the following arguments are required: --study"),
    ]
    for argv, fragment in cases:
        assert run_main(main, argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured
        assert fragment in captured.err, (fragment, captured.err)
    assert list(elsewhere.iterdir()) == []  # no store, no report folder
    assert not (tmp_path / "reports").exists() and not (tmp_path / "studies_artifacts").exists()


def test_cli_refusal_in_a_subprocess(studies: Path, tmp_path: Path) -> None:
    _empty_study(_copy_db(studies / "studies.db", tmp_path / "studies.db"))
    result = run_cli("search.report", "--study", "empty", cwd=tmp_path, env={"OPTUNA_STORAGE": ""})
    assert_one_line_error(result, "--study 'empty': has no complete trial")
    assert not (tmp_path / "reports").exists()
