"""The layered configuration: precedence, provenance, and the shape of every error message."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from vtasks.config import loader, sources
from vtasks.config.explain import explain
from vtasks.config.models import Topology
from vtasks.core.errors import ConfigError
from vtasks.runtime.batches import BatchQueue
from vtasks.runtime.topology import child_specs


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vtasks.yml"
    path.write_text(textwrap.dedent(text))
    return path


def load(*layers: sources.Layer) -> loader.Resolved:
    return loader.load([sources.defaults(), *layers])


def errors_of(*layers: sources.Layer) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(*layers)
    return str(info.value).splitlines()


GOOD = """\
    backend: default
    shutdown_timeout: 12
    workers:
      - name: fast
        queues: [emails, default]
        concurrency: 8
        processes: 2
      - name: slow
        queues: [reports]
    metrics:
      port: 9100
    """


# -- defaults and the happy path --------------------------------------------------------------
def test_defaults_alone_make_one_default_pool():
    topology = load().topology
    assert topology.backend == "default" and topology.heartbeat_interval == 5.0
    assert topology.alive_threshold == 30.0 and topology.shutdown_timeout == 30.0
    assert [(p.name, p.queues, p.concurrency, p.processes) for p in topology.workers] == [
        ("default", ("default",), 20, 1)
    ]
    assert topology.scheduler.enabled is False and topology.metrics is None
    assert topology.log_format == "text" and topology.health_file is None


def test_a_good_file(tmp_path):
    topology = load(sources.yaml_file(write(tmp_path, GOOD))).topology
    fast, slow = topology.workers
    assert fast.queues == ("emails", "default") and fast.processes == 2
    assert slow.concurrency == 20 and slow.processes == 1  # top-level default filled in
    assert topology.shutdown_timeout == 12 and topology.metrics is not None
    assert topology.metrics.port == 9100 and topology.metrics.address == "127.0.0.1"
    specs = child_specs(topology, burst=True)
    assert [s.name for s in specs] == ["fast.1", "fast.2", "slow.1"]
    assert specs[0].worker.queues == ("emails", "default") and specs[0].worker.burst
    assert specs[2].worker.shutdown_timeout == 12


def test_yaml_schedules_reach_the_scheduler_child(tmp_path):
    text = """\
        scheduler:
          enabled: true
          schedules:
            nightly: {task: app.tasks.report, schedule: "0 5 * * *", args: [1], priority: 3}
            ping: {task: app.tasks.ping, schedule: 60, time_zone: UTC, catch_up: skip}
        """
    topology = load(sources.yaml_file(write(tmp_path, text))).topology
    (spec,) = [s for s in child_specs(topology) if s.kind == "scheduler"]
    assert spec.schedules == {
        "nightly": {"task": "app.tasks.report", "schedule": "0 5 * * *", "args": (1,),
                    "kwargs": {}, "priority": 3, "catch_up": "once"},
        "ping": {"task": "app.tasks.ping", "schedule": 60.0, "args": (), "kwargs": {},
                 "time_zone": "UTC", "catch_up": "skip"},
    }  # fmt: skip
    assert all(not s.schedules for s in child_specs(topology) if s.kind == "worker")


def test_pool_batch_queues_and_prefetch_reach_the_workers(tmp_path):
    text = """\
        workers:
          - name: digests
            queues: [emails, default]
            concurrency: 4
            prefetch: 0
            batch:
              emails: {count: 50, timeout: 2}
        """
    topology = load(sources.yaml_file(write(tmp_path, text))).topology
    (spec,) = child_specs(topology)
    assert spec.worker.prefetch == 0
    assert spec.worker.batch_queues == {"emails": BatchQueue(count=50, timeout=2.0)}
    (default,) = child_specs(load().topology)
    assert default.worker.prefetch is None and default.worker.batch_queues == {}
    assert default.worker.prefetch_cap == max(100, default.worker.concurrency)


def test_a_batch_queue_must_be_served_by_its_pool(tmp_path):
    text = """\
        workers:
          - name: digests
            queues: [default]
            batch: {emails: {count: 0}}
        """
    problems = "\n".join(errors_of(sources.yaml_file(write(tmp_path, text))))
    assert "workers[0].batch.emails.count: must be >= 1, got 0" in problems
    text = text.replace("{count: 0}", "{count: 5}")
    problems = "\n".join(errors_of(sources.yaml_file(write(tmp_path, text))))
    assert "batch queues must be among the pool's queues, got ['emails']" in problems


def test_the_model_is_frozen(tmp_path):
    topology = load(sources.yaml_file(write(tmp_path, GOOD))).topology
    with pytest.raises(ValueError):
        topology.backend = "other"  # type: ignore[misc]


def test_an_empty_file_is_all_defaults(tmp_path):
    assert load(sources.yaml_file(write(tmp_path, "# nothing\n"))).topology == load().topology


# -- precedence -------------------------------------------------------------------------------
def settings_layer(**values):
    return sources.django_settings(SimpleNamespace(**values))


def test_precedence_defaults_settings_yaml_env_cli(tmp_path):
    yaml_layer = sources.yaml_file(write(tmp_path, "heartbeat_interval: 2\nshutdown_timeout: 7\n"))
    settings = settings_layer(
        VTASKS_HEARTBEAT_INTERVAL=1, VTASKS_ALIVE_THRESHOLD=9, VTASKS_SHUTDOWN_TIMEOUT=3
    )
    environ = sources.environment({"VTASKS_SHUTDOWN_TIMEOUT": "8", "VTASKS_CONCURRENCY": "4"})
    cli = sources.command_line({"concurrency": 6, "backend": None})
    resolved = load(settings, yaml_layer, environ, cli)
    t = resolved.topology
    assert t.alive_threshold == 9  # settings over default
    assert t.heartbeat_interval == 2  # yaml over settings
    assert t.shutdown_timeout == 8  # env over yaml
    assert t.workers[0].concurrency == 6  # cli over env
    assert t.backend == "default"  # a None CLI option is not given
    origins = resolved.origins
    assert origins["alive_threshold"] == "Django setting VTASKS_ALIVE_THRESHOLD"
    assert origins["heartbeat_interval"] == f"{tmp_path / 'vtasks.yml'}:1"
    assert origins["shutdown_timeout"] == "environment variable VTASKS_SHUTDOWN_TIMEOUT"
    assert origins["concurrency"] == "command line"
    assert origins["backend"] == "default"


def test_env_queues_are_comma_separated_and_fill_the_default_pool():
    t = load(sources.environment({"VTASKS_QUEUES": "emails, default,"})).topology
    assert t.workers[0].queues == ("emails", "default")


def test_settings_queues_may_be_a_list_or_a_string():
    assert load(settings_layer(VTASKS_QUEUES=["a", "b"])).topology.queues == ("a", "b")
    assert load(settings_layer(VTASKS_QUEUES="a,b")).topology.queues == ("a", "b")


def test_top_level_defaults_do_not_override_a_pool_that_sets_them(tmp_path):
    yaml_layer = sources.yaml_file(write(tmp_path, GOOD))
    t = load(yaml_layer, sources.environment({"VTASKS_CONCURRENCY": "3"})).topology
    assert [p.concurrency for p in t.workers] == [8, 3]


def test_mappings_merge_key_by_key_lists_replace(tmp_path):
    yaml_layer = sources.yaml_file(write(tmp_path, "metrics: {address: 0.0.0.0}\nqueues: [a, b]\n"))
    later = sources.Layer(
        name="x", values={"metrics": {"port": 9200}, "queues": ["c"]}, origins={"queues": "x"}
    )
    resolved = load(yaml_layer, later)
    assert resolved.topology.metrics is not None
    assert (resolved.topology.metrics.address, resolved.topology.metrics.port) == ("0.0.0.0", 9200)
    assert resolved.topology.queues == ("c",)
    assert not any(path.startswith("queues[") for path in resolved.origins)


def test_django_settings_comes_from_the_environment_or_the_file(tmp_path):
    yaml_layer = sources.yaml_file(write(tmp_path, "django_settings: from.file\n"))
    assert loader.peek([yaml_layer], "django_settings") == "from.file"
    environ = sources.environment({"DJANGO_SETTINGS_MODULE": "from.env"})
    assert loader.peek([yaml_layer, environ], "django_settings") == "from.env"


def test_check_output_names_every_source(tmp_path):
    yaml_layer = sources.yaml_file(write(tmp_path, GOOD))
    lines = explain(load(yaml_layer, sources.environment({"VTASKS_LOG_FORMAT": "json"})))
    text = "\n".join(lines)
    assert "workers[0].queues = [emails, default]" in text
    assert "# environment variable VTASKS_LOG_FORMAT" in text
    assert any(
        line.startswith("heartbeat_interval = 5.0") and line.endswith("# default") for line in lines
    )
    assert any(
        line.startswith("workers[1].concurrency = 20")
        and line.endswith("# default, via top-level concurrency")
        for line in lines
    )
    assert any(
        line.startswith("workers[1].name = slow") and "vtasks.yml:8" in line for line in lines
    )


# -- error messages ---------------------------------------------------------------------------
BAD_CONCURRENCY = """\
    workers:
      - name: a
        queues: [default]
      - name: b
        queues: [default]
        concurrency: 0
    """


def test_a_bad_value_names_its_path_rule_value_and_line(tmp_path):
    path = write(tmp_path, BAD_CONCURRENCY)
    assert errors_of(sources.yaml_file(path)) == [
        f"workers[1].concurrency: must be >= 1, got 0 ({path}:6)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workers:\n  - {name: a, queues: [q], concurency: 2}\n",
         "workers[0].concurency: unknown key (did you mean 'concurrency'?)"),
        ("colour: blue\n", "colour: unknown key"),
        ("workers:\n  - {queues: [q]}\n", "workers[0].name: is required"),
        ("workers:\n  - {name: a, queues: []}\n", "workers[0].queues: must list at least one queue, got []"),
        ("workers: []\n", "workers: must list at least one pool, got []"),
        ("queues: []\n", "queues: must list at least one queue, got []"),
        ("workers:\n  - {name: a, queues: q}\n", "workers[0].queues: must be a list, got 'q'"),
        ("workers:\n  - {name: 'a b', queues: [q]}\n",
         "workers[0].name: must use only letters, digits, '_', '.' and '-', got 'a b'"),
        ("workers:\n  - {name: a, queues: [q], processes: 0}\n", "workers[0].processes: must be >= 1, got 0"),
        ("workers:\n  - {name: a, queues: [q], concurrency: two}\n",
         "workers[0].concurrency: must be an integer, got 'two'"),
        ("workers:\n  - {name: a, queues: [q, q]}\n", "workers[0].queues: must list each queue once, got ['q', 'q']"),
        ("workers:\n  - {name: a, queues: [q]}\n  - {name: a, queues: [r]}\n",
         "(top level): pool names must be distinct, got ['a'] more than once"),
        ("workers:\n  - {name: a, queues: ['']}\n", "workers[0].queues[0]: must not be empty, got ''"),
        ("workers: {name: a}\n", "workers: must be a list, got {'name': 'a'}"),
        ("heartbeat_interval: fast\n", "heartbeat_interval: must be a number, got 'fast'"),
        ("shutdown_timeout: -1\n", "shutdown_timeout: must be >= 0.0, got -1"),
        ("heartbeat_interval: 10\nalive_threshold: 10\n",
         "(top level): alive_threshold (10.0) must be greater than heartbeat_interval (10.0), "
         "or live processes look dead"),
        ("log_format: xml\n", "log_format: must be one of 'text' or 'json', got 'xml'"),
        ("scheduler: {enabled: maybe}\n", "scheduler.enabled: must be true or false, got 'maybe'"),
        ("scheduler: yes\n", "scheduler: must be a mapping of keys, got True"),
        ("scheduler:\n  schedules: {t: {task: a.b, schedule: 'x * *'}}\n",
         "scheduler.schedules.t.schedule: must be a cron expression or seconds, got 'x * *'"),
        ("scheduler:\n  schedules: {t: {task: a.b, schedule: -1}}\n",
         "scheduler.schedules.t.schedule: must be more than 0 seconds"),
        ("scheduler:\n  schedules: {t: {task: a.b, schedule: 1, time_zone: Mars/Base}}\n",
         "scheduler.schedules.t.time_zone: must be an IANA time zone name, got 'Mars/Base'"),
        ("scheduler:\n  schedules: {t: {task: a.b, schedule: 1, cron: x}}\n",
         "scheduler.schedules.t.cron: unknown key"),
        ("metrics: {port: 70000}\n", "metrics.port: must be <= 65535, got 70000"),
        ("backend: ''\n", "backend: must not be empty, got ''"),
    ],
)  # fmt: skip
def test_error_shapes(tmp_path, text, expected):
    messages = errors_of(sources.yaml_file(write(tmp_path, text)))
    assert len(messages) == 1, messages
    assert messages[0].startswith(expected), messages


def test_every_problem_is_reported_at_once(tmp_path):
    text = "log_format: xml\nworkers:\n  - {name: a, queues: [q], concurrency: 0, processes: 0}\n"
    messages = errors_of(sources.yaml_file(write(tmp_path, text)))
    assert [m.split(":")[0] for m in messages] == [
        "workers[0].concurrency",
        "workers[0].processes",
        "log_format",
    ]


def test_an_env_error_names_the_variable_once():
    messages = errors_of(sources.environment({"VTASKS_CONCURRENCY": "0"}))
    assert messages == [
        "concurrency: must be >= 1, got '0' (environment variable VTASKS_CONCURRENCY)"
    ]


def test_a_settings_error_names_the_setting():
    (message,) = errors_of(settings_layer(VTASKS_HEARTBEAT_INTERVAL="soon"))
    assert message == (
        "heartbeat_interval: must be a number, got 'soon' (Django setting VTASKS_HEARTBEAT_INTERVAL)"
    )


def test_a_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "backend: default\nworkers:\n  - name: a\n   queues: [q\n")
    with pytest.raises(ConfigError) as info:
        sources.yaml_file(path)
    assert str(info.value).startswith(f"{path}:4: YAML syntax error")


def test_the_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"the top level must be a mapping of keys, got \['a'\]"):
        sources.yaml_file(write(tmp_path, "- a\n"))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yml: cannot read the configuration file"):
        sources.yaml_file(tmp_path / "nope.yml")


def test_unknown_keys_are_forbidden_in_the_model_too():
    with pytest.raises(ValueError):
        Topology.model_validate({"workers": [{"name": "a", "queues": ["q"], "threads": 3}]})
