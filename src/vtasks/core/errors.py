"""Every error vtasks raises on purpose: one base class, typed leaves."""


class VTasksError(Exception):
    """Base class of vtasks' own errors."""


class ConfigError(VTasksError):
    """A configuration value is invalid; the message names where it came from."""


class ArgumentNotJSON(VTasksError, TypeError):
    """A task argument or return value cannot round-trip through JSON unchanged.

    A ``TypeError`` so that code written against Django's ``normalize_json`` keeps working.
    """


class PayloadTooLarge(VTasksError, ValueError):
    """A task's arguments encode to more bytes than ``VTASKS_MAX_PAYLOAD_BYTES`` allows."""


class EnvelopeError(VTasksError, ValueError):
    """A stored message cannot be decoded."""


class UnknownTask(VTasksError):
    """A message names a path that is not a module-level function declared as a task."""


class WorkerLost(VTasksError):
    """The process running an attempt died (its heartbeat went stale) before finishing it."""


class TaskTimeout(VTasksError, TimeoutError):
    """An attempt ran past its task's ``timeout``."""


class ProcessPruned(VTasksError):
    """This process's row was removed from the process table: it must stop claiming."""


class Revoked(VTasksError):
    """The task was revoked before it started (``AsyncResult.revoke()`` in ``vtasks.compat.celery``)."""


class TaskFailed(VTasksError):
    """Stands for a failed task's exception when its class cannot be rebuilt from the result."""


class ConcurrencyLimited(VTasksError):
    """A task with ``on_conflict="discard"`` found its concurrency key at its limit: not run."""


class ConcurrencyKeyError(VTasksError, ValueError):
    """A task's ``concurrency_key`` template names something the call does not provide."""
