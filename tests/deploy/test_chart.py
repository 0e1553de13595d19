"""The Helm chart, checked by Helm's own library in its Python 3.12 venv
(`make helm-env`): lint with default and example values, values against
values.schema.json; the chart ships the same rules and dashboard as deploy/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


def rendered(values: Path | None = None) -> list[dict[str, Any]]:
    """The chart's manifests as Helm renders them offline."""
    if not HELM_PYTHON.exists():
        pytest.fail("Helm's library is missing: run `make helm-env` (make test does)")
    command = [str(HELM_PYTHON), str(CHECK), "--render", str(CHART)]
    result = subprocess.run(
        [*command, *([str(values)] if values else [])], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def test_the_rendered_chart_can_run_a_distributed_job() -> None:
    """What a distributed job needs of the manifests: the orchestrator finds
    every stage's Service, the stages that open media by URI (orchestrator
    and encoder) share the media claim at the same path and accept the job
    folder as a storage root, the job database is neither under a root nor
    on the media claim, SIGTERM has time to drain, and only named client
    namespaces reach the public API."""
    manifests = rendered()
    deployments = {
        d["metadata"]["name"].removeprefix("swapline-"): d
        for d in manifests
        if d["kind"] == "Deployment"
    }
    services = {
        s["metadata"]["name"].removeprefix("swapline-"): {p["port"] for p in s["spec"]["ports"]}
        for s in manifests
        if s["kind"] == "Service"
    }

    def pod(name: str) -> dict[str, Any]:
        return dict(deployments[name]["spec"]["template"]["spec"])

    def env(name: str) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in pod(name)["containers"][0]["env"]}

    def claim_at(name: str, path: str) -> str | None:
        volumes = {
            v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
            for v in pod(name)["volumes"]
        }
        for mount in pod(name)["containers"][0]["volumeMounts"]:
            if _under(path, [mount["mountPath"]]):
                return volumes[mount["name"]]
        return None

    orchestrator = env("orchestrator")
    for stage in ("detector", "aligner", "swapper", "blender", "encoder"):
        host, port = (
            orchestrator[f"SWAPLINE_{stage.upper()}_ADDR"].removeprefix("dns:///").split(":")
        )
        assert host == f"swapline-{stage}" and int(port) in services[stage]
    triton_host, triton_port = (
        env("swapper")["SWAPLINE_TRITON_URL"].removeprefix("dns:///").split(":")
    )
    assert int(triton_port) in services[triton_host.removeprefix("swapline-")]

    work_dir = orchestrator["SWAPLINE_WORK_DIR"]
    for name in ("orchestrator", "encoder"):
        roots = env(name)["SWAPLINE_STORAGE_ROOTS"].split(":")
        assert _under(work_dir, roots), (name, roots)  # the job's input and output
        assert claim_at(name, work_dir) == "swapline-media", name
    jobs_db = orchestrator["SWAPLINE_JOBS_DB"]
    assert not _under(jobs_db, orchestrator["SWAPLINE_STORAGE_ROOTS"].split(":"))
    assert claim_at("orchestrator", jobs_db) not in (None, "swapline-media")

    # Mutual TLS everywhere, tokens at the orchestrator, probes on the
    # plaintext health port (kubelet's gRPC probes cannot speak TLS).
    for name in deployments.keys() - {"triton"}:
        settings = env(name)
        assert "SWAPLINE_INSECURE" not in settings, name
        for variable in ("SWAPLINE_TLS_CERT", "SWAPLINE_TLS_KEY", "SWAPLINE_TLS_CA"):
            assert claim_at(name, settings[variable]) is None, (name, variable)  # a Secret
            assert any(
                _under(settings[variable], [m["mountPath"]])
                for m in pod(name)["containers"][0]["volumeMounts"]
            ), (name, variable)
        probe = pod(name)["containers"][0]["readinessProbe"]["grpc"]["port"]
        assert probe == int(settings["SWAPLINE_HEALTH_PORT"]), name
    assert "SWAPLINE_API_TOKENS" in orchestrator

    grace = pod("orchestrator")["terminationGracePeriodSeconds"]
    assert grace > float(orchestrator["SWAPLINE_DRAIN_SECONDS"])
    (clients,) = [
        p for p in manifests if p["metadata"]["name"] == "swapline-orchestrator-from-clients"
    ]
    assert all(rule["namespaceSelector"] for rule in clients["spec"]["ingress"][0]["from"])


def test_cert_manager_issues_a_certificate_for_every_address_the_orchestrator_dials() -> None:
    manifests = rendered(CHART / "examples" / "production.yaml")
    (certificate,) = [m for m in manifests if m["kind"] == "Certificate"]
    (orchestrator,) = [
        m
        for m in manifests
        if m["kind"] == "Deployment" and m["metadata"]["name"] == "swapline-orchestrator"
    ]
    env = {
        e["name"]: e.get("value", "")
        for e in orchestrator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    dialled = {
        value.removeprefix("dns:///").split(":")[0]
        for name, value in env.items()
        if name.endswith("_ADDR")
    }
    assert dialled and dialled <= set(certificate["spec"]["dnsNames"])
    # Three orchestrators share a PostgreSQL job database, not a file.
    pod = orchestrator["spec"]["template"]["spec"]
    assert orchestrator["spec"]["replicas"] == 3
    (database,) = [e for e in pod["containers"][0]["env"] if e["name"] == "SWAPLINE_JOBS_DB"]
    assert database["valueFrom"]["secretKeyRef"]["name"] == "swapline-jobs-db"
    assert "state" not in {v["name"] for v in pod["volumes"]}
    assert set(certificate["spec"]["usages"]) == {"server auth", "client auth"}
    assert certificate["spec"]["secretName"] == "swapline-tls"


def test_values_that_would_open_the_api_or_split_the_job_database_are_refused(
    tmp_path: Path,
) -> None:
    for name, text in {
        "every-namespace": "networkPolicy:\n  clientNamespaceSelector: null\n",
        "two-orchestrators": "stages:\n  orchestrator:\n    replicas: 2\n"
        "    port: 50050\n    metricsPort: 9150\n    resources: {}\n"
        "    autoscaling: {enabled: false, minReplicas: 1, maxReplicas: 1}\n",
    }.items():
        chart = tmp_path / name
        shutil.copytree(CHART, chart)
        (chart / "examples" / "bad.yaml").write_text(text)
        result = chart_check(chart)
        assert result.returncode != 0 and "examples/bad.yaml: schema" in result.stderr, name
