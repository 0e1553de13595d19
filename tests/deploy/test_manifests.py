"""The chart's rendered manifests, for the default values and every example
values file: each object valid against the Kubernetes schemas of every
supported version, and wired as a cluster needs it (volumes, ports, Service
names, the model repository, disruption budgets, GPU scheduling, the Triton
HPA's metric and the adapter rule that serves it)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from swapline.jobs import KubernetesTraining, TrainingRequest, new_run
from tests.conftest import REPO
from tests.deploy.test_chart import CHART, rendered

# The chart's kubeVersion is >=1.27; every minor release since.
KUBERNETES_VERSIONS = [f"1.{minor}" for minor in range(27, 38)]
# Custom resources of cert-manager and prometheus-operator: no schema here.
CUSTOM_KINDS = {"Certificate", "PodMonitor", "PrometheusRule"}
VALUES_FILES = ["values.yaml", *sorted(p.name for p in (CHART / "examples").glob("*.yaml"))]
RULES = REPO / "deploy" / "prometheus" / "rules" / "swapline.rules.yml"


@cache
def manifests(values_file: str) -> tuple[dict[str, Any], ...]:
    path = None if values_file == "values.yaml" else CHART / "examples" / values_file
    return tuple(rendered(path))


def by_kind(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def training_job(objects: tuple[dict[str, Any], ...], repository: str) -> dict[str, Any] | None:
    """The Job the orchestrator creates from the chart's template, or None
    when the chart has no cluster training."""
    maps = by_kind(objects, "ConfigMap")
    if "swapline-training-job" not in maps:
        return None
    template = yaml.safe_load(maps["swapline-training-job"]["data"]["training-job.yaml"])
    launcher = KubernetesTraining(
        template, "swapline", Path("/media/jobs/training"), Path(repository), api=object()
    )
    request = TrainingRequest("a_to_b", Path("/media/a"), Path("/media/b"), steps=100)
    return launcher.job_manifest(new_run(request), request)


def pods(objects: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """Pod specs by workload name: Deployments, and the training Job."""
    specs = {
        name: d["spec"]["template"]["spec"] for name, d in by_kind(objects, "Deployment").items()
    }
    repository = env(specs["swapline-orchestrator"]["containers"][0])["SWAPLINE_MODEL_REPOSITORY"]
    job = training_job(objects, repository)
    if job is not None:
        specs["training-job"] = job["spec"]["template"]["spec"]
    return specs


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def mount_of(pod: dict[str, Any], container: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volume mount that holds ``path`` (the deepest), with its volume."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    best = None
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if (path == root or path.startswith(root + "/")) and (
            best is None or len(root) > len(best["mountPath"])
        ):
            best = {**mount, "volume": volumes[mount["name"]]}
    return best


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_object_is_valid_for_every_supported_kubernetes(values_file: str) -> None:
    objects = manifests(values_file)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    job = training_job(objects, "/models/repository")
    checked = [o for o in objects if o["kind"] not in CUSTOM_KINDS]
    checked += [job] if job else []
    for version in KUBERNETES_VERSIONS:
        for obj in checked:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                what = f"{values_file}: {obj['kind']} {obj['metadata']['name']} on {version}"
                pytest.fail(f"{what}: {exc.message} at {list(exc.path)}")
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:  # at least well-formed
            assert obj["apiVersion"].count("/") == 1 and obj["metadata"]["name"] and obj["spec"]


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_volumes_ports_and_services_are_wired(values_file: str) -> None:
    objects = manifests(values_file)
    deployments = by_kind(objects, "Deployment")
    for name, pod in pods(objects).items():
        volumes = {v["name"] for v in pod["volumes"]}
        for container in pod["containers"]:
            mounts = [m["name"] for m in container.get("volumeMounts", [])]
            assert set(mounts) <= volumes, (values_file, name, set(mounts) - volumes)
            assert len(mounts) == len(set(mounts)), (values_file, name)
            # Read-only root: whatever the process writes goes to a volume.
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert mount_of(pod, container, "/tmp") is not None, (values_file, name)
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                for kind in ("grpc", "httpGet"):
                    port = container.get(probe, {}).get(kind, {}).get("port")
                    if port is None:
                        continue
                    if isinstance(port, str):
                        assert port in ports, (values_file, name, probe)
                    elif port not in ports.values():  # the plaintext health port
                        settings = env(container)
                        assert str(port) == settings.get("SWAPLINE_HEALTH_PORT"), (name, probe)
        assert pod["securityContext"]["runAsNonRoot"] is True

    for name, service in by_kind(objects, "Service").items():
        selector = service["spec"]["selector"]
        (target,) = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        container_ports = {
            p["name"]
            for c in target["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, (values_file, name, port)

    # Every address a pod dials is a Service of this release, on one of its ports.
    service_ports = {
        name: {p["port"] for p in s["spec"]["ports"]}
        for name, s in by_kind(objects, "Service").items()
    }
    for name, pod in pods(objects).items():
        for variable, value in env(pod["containers"][0]).items():
            if variable.endswith("_ADDR") or variable == "SWAPLINE_TRITON_URL":
                host, port = value.removeprefix("dns:///").rsplit(":", 1)
                assert int(port) in service_ports[host], (values_file, name, variable)


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_the_model_repository_is_one_folder_and_training_exports_beside_it(
    values_file: str,
) -> None:
    """Stages and Triton read the same folder of the models volume; the
    training Job writes into it, and the folder above (where an export
    stages its entry before renaming it in) is the same volume, writable."""
    objects = manifests(values_file)
    all_pods = pods(objects)
    triton = all_pods["swapline-triton"]["containers"][0]
    (served,) = [
        re.sub(r"^--(model-)?repository=", "", a)
        for a in triton["args"]
        if re.match(r"^--(model-)?repository=", a)
    ]
    claims = set()
    for name, pod in all_pods.items():
        container = pod["containers"][0]
        repository = env(container).get("SWAPLINE_MODEL_REPOSITORY", served)
        assert repository == served, (values_file, name)
        mount = mount_of(pod, container, repository)
        assert mount is not None, (values_file, name)
        claims.add(mount["volume"]["persistentVolumeClaim"]["claimName"])
        if name == "training-job":
            args = container["args"]
            export_to = args[args.index("--export-to") + 1]
            assert export_to == repository
            assert not mount.get("readOnly"), values_file
            parent = str(Path(export_to).parent)
            assert mount_of(pod, container, parent) == mount, "staging would cross volumes"
            assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
        else:
            assert mount.get("readOnly") is True, (values_file, name)
    assert len(claims) == 1, claims
    # On a new volume the folder is made before Triton starts.
    (init,) = all_pods["swapline-triton"]["initContainers"]
    assert init["command"] == ["mkdir", "-p", served]
    (mount,) = init["volumeMounts"]
    assert not mount.get("readOnly") and served.startswith(mount["mountPath"] + "/")


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_disruption_budgets_let_every_node_drain(values_file: str) -> None:
    """A drain evicts one pod at a time: each budget must allow at least one
    eviction, also for a workload running a single replica."""
    objects = manifests(values_file)
    budgets = by_kind(objects, "PodDisruptionBudget")
    autoscaled = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in by_kind(objects, "HorizontalPodAutoscaler").values()
    }
    for name, deployment in by_kind(objects, "Deployment").items():
        budget = budgets[name]["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= labels.items()
        replicas = (
            autoscaled[name]["spec"]["minReplicas"]
            if name in autoscaled
            else deployment["spec"]["replicas"]
        )
        if "minAvailable" in budget:
            allowed = replicas - int(budget["minAvailable"])
        else:
            allowed = int(budget["maxUnavailable"])
        assert allowed >= 1, (values_file, name, replicas, budget)


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_gpu_pods_are_placed_by_their_gpu_request(values_file: str) -> None:
    """Any node with a GPU the device plugin advertises will do unless the
    values pin a model: no GPU product list in the defaults."""
    objects = manifests(values_file)
    all_pods = pods(objects)
    cpu_triton = values_file == "cpu-nodes.yaml"
    for name in ("swapline-triton", "training-job"):
        if name not in all_pods:
            continue
        pod = all_pods[name]
        limits = pod["containers"][0]["resources"].get("limits", {})
        if name == "swapline-triton" and cpu_triton:
            assert "nvidia.com/gpu" not in limits
            assert pod["containers"][0]["image"].endswith("-cpu")
            assert pod["containers"][0]["args"][0] == "triton"
            continue
        assert int(limits["nvidia.com/gpu"]) >= 1, (values_file, name)
        if values_file == "values.yaml":
            assert "affinity" not in pod and "nodeSelector" not in pod, name


def test_the_triton_hpa_metric_is_served_per_pod_by_the_shipped_adapter_rule() -> None:
    objects = manifests("values.yaml")
    hpa = by_kind(objects, "HorizontalPodAutoscaler")["swapline-triton"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    adapter = by_kind(objects, "ConfigMap")["swapline-prometheus-adapter"]
    (rule,) = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    assert rule["name"]["as"] == metric["pods"]["metric"]["name"]
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    series = rule["seriesQuery"].split("{")[0]
    assert re.fullmatch(rule["name"]["matches"], series)
    recorded = {
        r["record"]: r["expr"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for r in group["rules"]
        if "record" in r
    }
    # The series exists, per pod, and leaves the batching delay out.
    assert series in recorded
    assert "by (namespace, pod)" in recorded[series]
    assert "2000 * " in recorded[series] and "nv_inference_request_success" in recorded[series]


def test_the_chart_s_default_images_are_the_ones_make_images_builds() -> None:
    from swapline.devtools.images import RUNTIME, TRITON_CPU

    stages = {
        c["image"]
        for name, pod in pods(manifests("values.yaml")).items()
        if name not in ("swapline-triton", "training-job")
        for c in pod["containers"]
    }
    assert stages == {RUNTIME.name}
    triton = pods(manifests("cpu-nodes.yaml"))["swapline-triton"]["containers"][0]
    assert triton["image"] == TRITON_CPU.name
