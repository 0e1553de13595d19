"""The PromQL expressions swapline ships: dashboard panels and rules."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from typing import Any

import yaml

from tests.conftest import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "swapline.json"
RULES = REPO / "deploy" / "prometheus" / "rules" / "swapline.rules.yml"
# Exported by Triton only on GPU nodes: checked by `make gpu-check`.
GPU_ONLY = re.compile(r"nv_gpu_")

_COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*(\(?[-0-9.* ]+\)?)\s*$")


def _operands(alert_expr: str) -> list[str]:
    """An alert's condition without its thresholds: ``a > 1 and b > 2`` ->
    ``a``, ``b``. A healthy system gives no alert, but the measured
    quantities must have data."""
    parts = re.split(r"\s+and\s+", alert_expr.strip())
    return [_COMPARISON.sub("", part).strip() for part in parts]


def shipped_expressions() -> dict[str, str]:
    """name -> expression, for every dashboard target and every rule."""
    found: dict[str, str] = {}
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                found[f"record {rule['record']}"] = rule["expr"]
            else:
                for i, operand in enumerate(_operands(rule["expr"])):
                    found[f"alert {rule['alert']} operand {i}"] = operand
    return found


def query_range(prometheus: str, expr: str, start: float, end: float) -> list[Any]:
    params = urllib.parse.urlencode(
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "2s"}
    )
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{params}", timeout=30) as r:
        reply = json.load(r)
    assert reply["status"] == "success", reply
    return list(reply["data"]["result"])


def has_values(series: list[Any]) -> bool:
    return any(value != "NaN" for s in series for _, value in s["values"])
