"""The Helm chart (helm/vtasks): it lints, renders offline, every manifest matches the Kubernetes
schemas, and the topology it renders passes ``vtasks check``.

Offline throughout: helm-python-sdk embeds Helm's Go library (no helm binary, no cluster) and
kubernetes-validate ships the Kubernetes JSON schemas.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helm_python import Chart, HelmRenderError, HelmValuesError, lint

from tests.helpers import ROOT
from vtasks.cli.main import main as vtasks_main
from vtasks.drivers.valkey.keys import queue_keys
from vtasks.models import STATUS_CHOICES, TaskRecord
from vtasks.runtime.topology import SupervisorSettings

CHART = ROOT / "helm" / "vtasks"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
KUBE_VERSION = "1.30"
RELEASE = "demo"
#: Custom resources of the Prometheus Operator and KEDA: kubernetes-validate ships only the
#: built-in kinds' schemas, so these are skipped by kind (their fields are asserted below).
CRD_KINDS = {"ServiceMonitor", "ScaledObject", "TriggerAuthentication"}
WORKER_COMMAND = ["vtasks", "supervise", "--config", "/etc/vtasks/vtasks.yml"]
HEALTH_COMMAND = ["vtasks", "health", "--config", "/etc/vtasks/vtasks.yml"]

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> Iterator[Chart]:
    with Chart.load(CHART) as loaded:
        yield loaded


def full_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(FULL_VALUES.read_text())
    return values


def valkey_values() -> dict[str, Any]:
    values = full_values()
    values["backend"] = {
        "type": "valkey", "alias": "default", "existingSecret": "mysite-valkey",
        "valkeyPrefix": "jobs",
    }  # fmt: skip
    values["keda"]["valkey"] = {"address": "valkey.data:6379", "passwordKey": "VALKEY_PASSWORD"}
    return values


VALUE_SETS = {"default": dict, "full": full_values, "valkey": valkey_values}


def render(chart: Chart, values: dict[str, Any]) -> list[Doc]:
    manifests = chart.render(copy.deepcopy(values), name=RELEASE, namespace="jobs")
    docs: list[Doc] = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(deployment: Doc) -> Doc:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    result: Doc = only
    return result


def env_of(deployment: Doc) -> dict[str, Doc]:
    return {entry["name"]: entry for entry in container(deployment)["env"]}


def config_map(docs: list[Doc]) -> dict[str, str]:
    (only,) = of_kind(docs, "ConfigMap").values()
    data: dict[str, str] = only["data"]
    return data


def workers(docs: list[Doc]) -> dict[str, Doc]:
    return {
        name: doc
        for name, doc in of_kind(docs, "Deployment").items()
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    }


# -- lint and schema ---------------------------------------------------------------------------
@pytest.mark.parametrize("values", ["default", "full", "valkey"])
def test_the_chart_lints_without_warnings(values: str) -> None:
    report = lint(CHART, VALUE_SETS[values](), strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values", ["default", "full", "valkey"])
def test_every_manifest_matches_the_kubernetes_schemas(chart: Chart, values: str) -> None:
    docs = render(chart, VALUE_SETS[values]())
    checked = set()
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        # strict: an unknown field (a typo in a template) is an error too
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        checked.add(doc["kind"])
    assert {"ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Service"} <= checked


def test_bad_values_are_refused_before_anything_renders(chart: Chart) -> None:
    with pytest.raises(HelmValuesError, match="/pools/0/name"):
        render(chart, {"pools": [{"name": "Mail_Pool", "queues": ["emails"]}]})
    with pytest.raises(HelmValuesError, match="concurency"):
        render(chart, {"topology": {"concurency": 5}})
    with pytest.raises(HelmValuesError, match="/backend/type"):
        render(chart, {"backend": {"type": "rabbitmq"}})
    both = {"name": "mail", "queues": ["emails"], "hpa": {"enabled": True}}
    both["keda"] = {"enabled": True}
    with pytest.raises(HelmRenderError, match="hpa or keda, not both"):
        render(chart, {"pools": [both]})
    with pytest.raises(HelmRenderError, match="keda.valkey.address"):
        values = valkey_values()
        values["keda"]["valkey"]["address"] = ""
        render(chart, values)


# -- default values ----------------------------------------------------------------------------
def test_defaults_run_one_pool_a_scheduler_and_a_migration_hook(chart: Chart) -> None:
    docs = render(chart, {})
    pools = workers(docs)
    assert list(pools) == ["demo-vtasks-default"]
    pool = pools["demo-vtasks-default"]
    assert pool["spec"]["replicas"] == 1
    assert container(pool)["command"] == WORKER_COMMAND
    scheduler = of_kind(docs, "Deployment")["demo-vtasks-scheduler"]
    assert container(scheduler)["command"] == WORKER_COMMAND[:1] + [
        "scheduler",
        *WORKER_COMMAND[2:],
    ]
    schedules = yaml.safe_load(mounted_topology(docs, scheduler))
    assert schedules["scheduler"] == {"enabled": True, "schedules": {}}
    job = of_kind(docs, "Job")["demo-vtasks-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(job)["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for kind in ("HorizontalPodAutoscaler", "ScaledObject", "TriggerAuthentication"):
        assert of_kind(docs, kind) == {}, kind
    assert of_kind(docs, "ServiceMonitor") == {}
    assert set(of_kind(docs, "Service")) == {"demo-vtasks-metrics"}


def test_urls_come_from_the_existing_secret_never_from_values(chart: Chart) -> None:
    docs = render(chart, {})
    for pod_owner in [*of_kind(docs, "Deployment").values(), *of_kind(docs, "Job").values()]:
        env = env_of(pod_owner)
        assert env["DJANGO_SETTINGS_MODULE"]["value"] == "mysite.settings"
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "vtasks",
            "key": "DATABASE_URL",
        }
        assert "BROKER_URL" not in env
    valkey = workers(render(chart, valkey_values()))["mysite-tasks-mail"]
    env = env_of(valkey)
    assert env["BROKER_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "mysite-valkey",
        "key": "BROKER_URL",
    }
    # the project's own database is optional beside Valkey
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert all("value" not in env[name] for name in ("BROKER_URL", "DATABASE_URL"))


@pytest.mark.parametrize(("values", "shutdown_timeout"), [("default", 30), ("full", 120)])
def test_the_grace_period_outlasts_the_supervisors_own_drain(
    chart: Chart, values: str, shutdown_timeout: float
) -> None:
    docs = render(chart, VALUE_SETS[values]())
    kill_margin = SupervisorSettings(shutdown_timeout=shutdown_timeout).kill_margin
    deployments = of_kind(docs, "Deployment")
    assert len(deployments) >= 2
    for deployment in deployments.values():
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > shutdown_timeout + kill_margin, deployment["metadata"]["name"]
        assert yaml.safe_load(config_map(docs)["vtasks.yml"])["shutdown_timeout"] == (
            shutdown_timeout
        )


def test_pods_run_as_non_root_on_a_read_only_root_with_writable_empty_dirs(chart: Chart) -> None:
    docs = render(chart, {})
    for doc in [*of_kind(docs, "Deployment").values(), *of_kind(docs, "Job").values()]:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        security = container(doc)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in container(doc)["volumeMounts"]}
        assert mounts["/tmp"] in empty_dirs


@pytest.mark.parametrize("values", ["default", "full"])
def test_probes_run_vtasks_health_on_a_health_file_the_pod_can_write(
    chart: Chart, values: str
) -> None:
    docs = render(chart, VALUE_SETS[values]())
    for deployment in workers(docs).values():
        probes = container(deployment)
        assert probes["livenessProbe"]["exec"]["command"] == HEALTH_COMMAND
        assert probes["readinessProbe"]["exec"]["command"] == HEALTH_COMMAND
        topology = yaml.safe_load(mounted_topology(docs, deployment))
        health_dir = str(Path(topology["health_file"]).parent)
        pod = deployment["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        volume = next(v for v in pod["volumes"] if v["name"] == mounts[health_dir])
        assert "emptyDir" in volume


def mounted_topology(docs: list[Doc], deployment: Doc) -> str:
    """The text a worker pod sees at --config: its config map item, resolved like the kubelet."""
    config = Path(container(deployment)["command"][-1])
    mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
    for volume in deployment["spec"]["template"]["spec"]["volumes"]:
        if "configMap" not in volume or Path(mounts[volume["name"]]) != config.parent:
            continue
        for item in volume["configMap"]["items"]:
            if item["path"] == config.name:
                return config_map(docs)[item["key"]]
    raise AssertionError(f"{config} is not mounted from the config map")


# -- full values -------------------------------------------------------------------------------
def test_each_pool_gets_a_deployment_running_only_its_own_pool(chart: Chart) -> None:
    docs = render(chart, full_values())
    pools = workers(docs)
    assert set(pools) == {"mysite-tasks-mail", "mysite-tasks-reports", "mysite-tasks-bulk"}
    for name, deployment in pools.items():
        topology = yaml.safe_load(mounted_topology(docs, deployment))
        assert [pool["name"] for pool in topology["workers"]] == [
            name.removeprefix("mysite-tasks-")
        ]
        assert topology["scheduler"] == {"enabled": False}
    mail = yaml.safe_load(mounted_topology(docs, pools["mysite-tasks-mail"]))["workers"][0]
    assert mail == {
        "name": "mail",
        "queues": ["emails", "default"],
        "concurrency": 50,
        "processes": 2,
    }
    # autoscaled pools leave replicas to their autoscaler; the others get theirs
    assert "replicas" not in pools["mysite-tasks-mail"]["spec"]
    assert "replicas" not in pools["mysite-tasks-reports"]["spec"]
    assert pools["mysite-tasks-bulk"]["spec"]["replicas"] == 0
    resources = container(pools["mysite-tasks-mail"])["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "512Mi"}
    scheduler = of_kind(docs, "Deployment")["mysite-tasks-scheduler"]
    assert scheduler["spec"]["replicas"] == 2
    schedules = yaml.safe_load(mounted_topology(docs, scheduler))["scheduler"]["schedules"]
    assert schedules["nightly"] == {
        "task": "tests.tasks.noop", "schedule": "0 5 * * *", "queue_name": "reports",
    }  # fmt: skip


def test_pools_scale_with_an_hpa_or_keda_and_disruptions_are_bounded(chart: Chart) -> None:
    docs = render(chart, full_values())
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "mysite-tasks-reports"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    (scaled,) = of_kind(docs, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"] == {"name": "mysite-tasks-mail"}
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 20)
    budgets = of_kind(docs, "PodDisruptionBudget")
    assert set(budgets) == {*workers(docs), "mysite-tasks-scheduler"}
    (monitor,) = of_kind(docs, "ServiceMonitor").values()
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (service,) = of_kind(docs, "Service").values()
    assert service["spec"]["ports"][0]["port"] == 9100
    assert yaml.safe_load(config_map(docs)["vtasks.yml"])["metrics"] == {
        "address": "0.0.0.0",
        "port": 9100,
    }


def test_keda_on_the_database_counts_the_pools_rows_of_the_task_table(chart: Chart) -> None:
    docs = render(chart, full_values())
    (trigger,) = of_kind(docs, "ScaledObject")["mysite-tasks-mail"]["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    query = trigger["metadata"]["query"]
    assert f"FROM {TaskRecord._meta.db_table} " in query
    assert "queue_name IN ('emails', 'default')" in query and "backend = 'default'" in query
    statuses = {status for status, _ in STATUS_CHOICES}
    assert {"READY", "RUNNING"} <= statuses and "'READY'" in query and "'RUNNING'" in query
    assert trigger["metadata"]["targetQueryValue"] == "100"
    (auth,) = of_kind(docs, "TriggerAuthentication").values()
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": "mysite-database", "key": "KEDA_DATABASE_URL"}
    ]


def test_keda_on_valkey_reads_the_drivers_own_queue_keys(chart: Chart) -> None:
    docs = render(chart, valkey_values())
    triggers = of_kind(docs, "ScaledObject")["mysite-tasks-mail"]["spec"]["triggers"]
    expected = []
    for queue in ("emails", "default"):
        keys = queue_keys("jobs", queue)
        expected += [keys.ready, keys.running]
    assert [t["metadata"]["listName"] for t in triggers] == expected
    assert {t["type"] for t in triggers} == {"redis"}
    assert {t["metadata"]["address"] for t in triggers} == {"valkey.data:6379"}
    (auth,) = of_kind(docs, "TriggerAuthentication").values()
    assert auth["spec"]["secretTargetRef"][0]["key"] == "VALKEY_PASSWORD"
    cluster = valkey_values()
    cluster["keda"]["valkey"]["cluster"] = True
    triggers = of_kind(render(chart, cluster), "ScaledObject")["mysite-tasks-mail"]["spec"]
    assert {t["type"] for t in triggers["triggers"]} == {"redis-cluster"}
    assert all("addresses" in t["metadata"] for t in triggers["triggers"])


# -- the rendered topology is valid vtasks configuration ---------------------------------------
@pytest.mark.parametrize("values", ["default", "full"])
def test_every_rendered_topology_passes_vtasks_check(
    chart: Chart, values: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = config_map(render(chart, VALUE_SETS[values]()))
    assert "vtasks.yml" in files and len(files) >= 2  # the whole topology and one per pool
    for key, text in files.items():
        path = tmp_path / key
        path.write_text(text)
        # --settings: the test project's settings stand in for the chart's settings module
        code = vtasks_main(["--settings", "tests.settings", "check", "--config", str(path)])
        out, err = capsys.readouterr()
        assert code == 0, f"{key}: {err}"
        assert f"configuration is valid ({path})" in out
        # the chart's values are the ones in force, and the file is where they came from
        lines = ["backend = default"]
        if key != "scheduler.yml":  # the scheduler writes no health file
            lines.append("health_file = /var/run/vtasks/health")
        for line in lines:
            assert re.search(rf"^  {re.escape(line)} +# {re.escape(str(path))}:\d+$", out, re.M)


def test_the_worked_example_of_the_deployment_docs_installs(chart: Chart) -> None:
    text = (ROOT / "docs" / "deployment.md").read_text()
    example = re.search(r"cat > tasks-values.yaml <<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert example, "docs/deployment.md lost its worked values file"
    docs = render(chart, yaml.safe_load(example.group(1)))
    for doc in docs:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    pools = workers(docs)
    assert {name: d["spec"]["replicas"] for name, d in pools.items()} == {
        "demo-vtasks-mail": 3,
        "demo-vtasks-reports": 1,
    }
    assert all(
        d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 60 for d in pools.values()
    )


def test_a_pools_pods_roll_when_its_own_topology_changes_only(chart: Chart) -> None:
    def checksums(values: dict[str, Any]) -> dict[str, str]:
        return {
            name: d["spec"]["template"]["metadata"]["annotations"]["checksum/topology"]
            for name, d in workers(render(chart, values)).items()
        }

    before = checksums(full_values())
    changed = full_values()
    changed["pools"][1]["concurrency"] = 8
    after = checksums(changed)
    assert [name for name in before if before[name] != after[name]] == ["mysite-tasks-reports"]
