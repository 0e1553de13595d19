"""The Helm chart, checked by Helm's own library in its Python 3.12 venv
(`make helm-env`): lint with default and example values, values against
values.schema.json; the chart ships the same rules and dashboard as deploy/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

CHART = REPO / "charts" / "swapline"
HELM_PYTHON = REPO / ".venv-helm" / "bin" / "python"
CHECK = REPO / "deploy" / "tools" / "chart_check.py"


def chart_check(chart: Path) -> subprocess.CompletedProcess[str]:
    if not HELM_PYTHON.exists():
        pytest.fail("Helm's library is missing: run `make helm-env` (make test does)")
    return subprocess.run(
        [str(HELM_PYTHON), str(CHECK), str(chart)], capture_output=True, text=True, timeout=300
    )


def test_chart_lints_and_its_values_match_the_schema() -> None:
    result = chart_check(CHART)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": ok") == 1 + len(list((CHART / "examples").glob("*.yaml")))


def test_a_broken_template_or_bad_values_fail_the_check(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(CHART, broken)
    with (broken / "templates" / "NOTES.txt").open("a") as notes:
        notes.write("{{ .Values.nothing.here }}\n")
    assert chart_check(broken).returncode != 0

    bad_values = tmp_path / "bad-values"
    shutil.copytree(CHART, bad_values)
    (bad_values / "examples" / "bad.yaml").write_text("stages:\n  detector:\n    port: 70000\n")
    result = chart_check(bad_values)
    assert result.returncode != 0 and "70000" in result.stderr


def test_chart_ships_the_same_rules_and_dashboard_as_deploy() -> None:
    pairs = {
        CHART / "files" / "swapline.rules.yml": REPO / "deploy/prometheus/rules/swapline.rules.yml",
        CHART / "files" / "swapline.json": REPO / "deploy/grafana/swapline.json",
    }
    for shipped, source in pairs.items():
        assert shipped.read_bytes() == source.read_bytes(), f"copy {source} to {shipped}"
