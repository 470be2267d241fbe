"""django-vtasks' settings names: each one's default, its Django setting, and its environment
variable overriding the setting; the lone worker's flags over all three."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vtasks.config import env, sources
from vtasks.core.errors import ConfigError
from vtasks.serve import worker_options

#: setting, a Django-settings value, what it reads as, an environment value, what that reads as
CASES = [
    (env.QUEUES_SETTING, ["high", "low"], ["high", "low"], "emails, low", ["emails", "low"]),
    (env.CONCURRENCY_SETTING, 50, 50, "7", 7),
    (env.BACKEND_SETTING, "valkey", "valkey", "pg", "pg"),
    (env.WORKER_ID_SETTING, "web-1", "web-1", "pod-a", "pod-a"),
    (env.RUN_SCHEDULER_SETTING, False, False, "true", True),
    (env.COMPRESS_THRESHOLD_SETTING, 4096, 4096, "0", 0),
    (env.DLQ_CAP_SETTING, 50, 50, "5", 5),
    (env.VALKEY_PREFIX_SETTING, "vt:", "vt", "app", "app"),
    (env.HEALTH_CHECK_FILE_SETTING, "/tmp/h", "/tmp/h", "/run/h", "/run/h"),
]
DEFAULTS = {
    env.QUEUES: ["default"],
    env.CONCURRENCY: 20,
    env.BACKEND: "default",
    env.WORKER_ID: None,  # the worker's id is then host:pid
    env.RUN_SCHEDULER: True,
    env.COMPRESS_THRESHOLD: None,  # the envelope's own default, 1024 bytes
    env.DLQ_CAP: None,  # the Valkey driver's own default, 1000
    env.VALKEY_PREFIX: None,  # drivers.valkey.keys.DEFAULT_PREFIX, "vt"
    env.HEALTH_CHECK_FILE: None,
}


@pytest.mark.parametrize("case", CASES, ids=[case[0].name for case in CASES])
def test_setting_then_environment_override(case):
    setting, configured, expected, raw_env, from_env = case
    settings = SimpleNamespace(**{setting.name: configured})
    assert env.value(setting, SimpleNamespace(), environ={}) == DEFAULTS[setting.name]
    assert env.value(setting, settings, environ={}) == expected
    assert env.value(setting, settings, environ={setting.name: raw_env}) == from_env
    # An empty variable is "not set", as in a container spec that blanks it.
    assert env.value(setting, settings, environ={setting.name: ""}) == expected


def test_the_owning_modules_supply_the_none_defaults():
    from vtasks.drivers.valkey.driver import DEFAULT_DLQ_CAP
    from vtasks.drivers.valkey.keys import DEFAULT_PREFIX
    from vtasks.wire.envelope import DEFAULT_COMPRESS_THRESHOLD

    assert (DEFAULT_COMPRESS_THRESHOLD, DEFAULT_DLQ_CAP, DEFAULT_PREFIX) == (1024, 1000, "vt")


@pytest.mark.parametrize(
    ("setting", "raw", "message"),
    [
        (env.CONCURRENCY_SETTING, "0", "environment variable VTASKS_CONCURRENCY: must be >= 1"),
        (env.CONCURRENCY_SETTING, "many", "must be a whole number, got 'many'"),
        (env.RUN_SCHEDULER_SETTING, "ja", "VTASKS_RUN_SCHEDULER: must be true or false"),
        (env.DLQ_CAP_SETTING, "-1", "VTASKS_DLQ_CAP: must be >= 1, got -1"),
        (env.VALKEY_PREFIX_SETTING, ":", "must be a non-empty key prefix"),
    ],
)
def test_a_bad_environment_value_names_its_variable(setting, raw, message):
    with pytest.raises(ConfigError, match=message):
        env.value(setting, SimpleNamespace(), environ={setting.name: raw})


def test_a_bad_setting_names_the_setting():
    with pytest.raises(ConfigError, match="setting VTASKS_QUEUES: must be a list of queue names"):
        env.value(env.QUEUES_SETTING, SimpleNamespace(VTASKS_QUEUES=[1, 2]), environ={})


def test_the_supervisor_reads_vtasks_health_check_file_too():
    settings = SimpleNamespace(VTASKS_HEALTH_CHECK_FILE="/tmp/probe")
    assert sources.django_settings(settings).values == {"health_file": "/tmp/probe"}
    both = sources.environment({env.HEALTH_CHECK_FILE: "/a", env.HEALTH_FILE: "/b"})
    assert both.values == {"health_file": "/b"}  # vtasks' own name wins


def test_worker_flags_win_over_environment_over_settings():
    settings = SimpleNamespace(
        VTASKS_QUEUES=["a", "b"], VTASKS_CONCURRENCY=30, VTASKS_BACKEND="pg",
        VTASKS_WORKER_ID="from-settings", VTASKS_HEALTH_CHECK_FILE="/tmp/s",
    )  # fmt: skip
    nothing = dict.fromkeys(("queues", "concurrency", "backend", "worker_id", "health_file"))
    from_settings = worker_options(nothing, settings, environ={})
    assert (from_settings.queues, from_settings.concurrency, from_settings.backend) == (
        ("a", "b"), 30, "pg",
    )  # fmt: skip
    assert (from_settings.worker_id, from_settings.health_file) == ("from-settings", "/tmp/s")
    environ = {"VTASKS_CONCURRENCY": "40", "VTASKS_QUEUES": "c", "VTASKS_WORKER_ID": "from-env"}
    from_env = worker_options(nothing, settings, environ=environ)
    assert (from_env.queues, from_env.concurrency, from_env.worker_id) == (("c",), 40, "from-env")
    flags = {"queues": ["d", "e"], "concurrency": 3, "backend": "valkey", "worker_id": "flag"}
    from_flags = worker_options(flags, settings, environ=environ)
    assert (from_flags.queues, from_flags.concurrency, from_flags.backend) == (
        ("d", "e"), 3, "valkey",
    )  # fmt: skip
    assert from_flags.worker_id == "flag"


def test_worker_defaults_are_django_vtasks_defaults():
    options = worker_options({}, SimpleNamespace(), environ={})
    assert (options.queues, options.concurrency, options.backend) == (("default",), 20, "default")
    assert options.worker_id is None and options.health_file is None and not options.scheduler


def test_worker_concurrency_flag_is_checked():
    with pytest.raises(ConfigError, match="--concurrency: must be >= 1, got 0"):
        worker_options({"concurrency": 0}, SimpleNamespace(), environ={})


def test_run_scheduler_false_turns_the_scheduler_flag_off():
    on = worker_options({"scheduler": True}, SimpleNamespace(), environ={})
    assert on.scheduler is True
    off = worker_options({"scheduler": True}, SimpleNamespace(VTASKS_RUN_SCHEDULER=False), {})
    assert off.scheduler is False
    by_env = {"VTASKS_RUN_SCHEDULER": "false"}
    assert worker_options({"scheduler": True}, SimpleNamespace(), by_env).scheduler is False
    assert worker_options({}, SimpleNamespace(), environ={}).scheduler is False
