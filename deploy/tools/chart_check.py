"""Checks the Helm chart with Helm's own library (helm-sdkpy, Python 3.12):
`helm lint` with the default values and with every example values file, and
every values file against values.schema.json. With ``--render``, prints the
manifests Helm renders offline (helm-python-sdk) as one JSON list instead.

Usage: python chart_check.py CHART              (exit status 1 on any problem)
       python chart_check.py --render CHART [VALUES.yaml]
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import helm_sdkpy
import jsonschema
import yaml


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge: maps merge key by key, everything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def lint(chart: Path) -> list[str]:
    config = helm_sdkpy.Configuration(namespace="swapline")
    result = asyncio.run(helm_sdkpy.Lint(config).run(str(chart)))
    # Helm's support.Message: Severity 1 info, 2 warning, 3 error.
    problems = [
        f"{m.get('Path', '')}: {m.get('Err')}"
        for m in result.get("Messages") or []
        if int(m.get("Severity", 0)) >= 2
    ]
    problems.extend(str(e) for e in result.get("Errors") or [])
    if result.get("TotalChartsLinted") != 1:
        problems.append(f"lint did not run: {result}")
    return problems


def main(chart_arg: str) -> int:
    chart = Path(chart_arg).resolve()
    schema = json.loads((chart / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    failures: list[str] = []
    cases = {"values.yaml": defaults}
    for example in sorted((chart / "examples").glob("*.yaml")):
        cases[f"examples/{example.name}"] = merged(defaults, yaml.safe_load(example.read_text()))
    for name, values in cases.items():
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(values)]
        failures.extend(f"{name}: schema: {e}" for e in errors)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / chart.name
            shutil.copytree(chart, copy)
            (copy / "values.yaml").write_text(yaml.safe_dump(values))
            failures.extend(f"{name}: lint: {p}" for p in lint(copy))
        print(f"{name}: {'ok' if not failures else 'FAILED'}")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


def render(chart_arg: str, values_file: str | None = None) -> list[dict[str, Any]]:
    """Every manifest of the chart, rendered as `helm template` would, with
    the chart's values merged with ``values_file``'s."""
    import helm_python

    chart = helm_python.Chart.load(chart_arg)
    values = yaml.safe_load(Path(values_file).read_text()) if values_file else None
    rendered = chart.render(values, name="swapline", namespace="swapline", is_install=True)
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--render":
        print(json.dumps(render(*sys.argv[2:4])))
        raise SystemExit(0)
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "charts/swapline"))
