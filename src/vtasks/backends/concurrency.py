"""Per-key concurrency: the key template of ``@task(concurrency_key=...)``, formatted per call.

The formatted key travels in the call's stored options (``{"concurrency": {"key", "limit",
"on_conflict"}}``); the worker takes one of the key's slots before it runs the call and frees it
once the outcome is recorded (``runtime.concurrency``).
"""

from __future__ import annotations

import hashlib
import inspect
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.tasks.exceptions import InvalidTask

from vtasks.core.errors import ConcurrencyKeyError
from vtasks.wire import codec

#: Formatted keys longer than this are shortened to a prefix plus a digest (the slot tables'
#: key column holds 255 characters).
MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class ConcurrencyPlan:
    """A task's key template bound to its function's signature, worked out once per task."""

    task_path: str
    template: str
    limit: int
    on_conflict: str
    signature: inspect.Signature
    #: The parameter that receives the ``TaskContext`` (``takes_context``): not in the call.
    context_param: str | None
    #: The ``**kwargs`` parameter, whose keys may be named in the template too.
    var_keyword: str | None
    #: The other options of the call (``timeout``, ``result_ttl``).
    base_options: dict[str, Any]

    def options_json(self, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
        """The call's stored options: the task's own plus its formatted concurrency key."""
        key = self.key(args, kwargs)
        spec = {"key": key, "limit": self.limit, "on_conflict": self.on_conflict}
        return codec.dumps({**self.base_options, "concurrency": spec})

    def key(self, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
        call_args = (None, *args) if self.context_param else tuple(args)
        try:
            bound = self.signature.bind(*call_args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.task_path}: {exc}") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        if self.context_param:
            values.pop(self.context_param, None)
        if self.var_keyword:
            values = {**values.pop(self.var_keyword, {}), **values}
        try:
            key = self.template.format_map(values)
        except (KeyError, IndexError, AttributeError) as exc:
            raise ConcurrencyKeyError(
                f"{self.task_path}: concurrency_key {self.template!r} names {exc}, which this "
                f"call does not provide (it has: {', '.join(sorted(values)) or 'no arguments'})"
            ) from None
        if len(key) > MAX_KEY_LENGTH:
            digest = hashlib.sha256(key.encode()).hexdigest()[:32]
            key = f"{key[: MAX_KEY_LENGTH - 40]}#{digest}"
        return key


def plan_for(task: Any, base_options: dict[str, Any]) -> ConcurrencyPlan | None:
    """The task's concurrency plan, or ``None`` when it has no ``concurrency_key``."""
    template = getattr(task, "concurrency_key", None)
    if not template:
        return None
    signature, context_param, var_keyword = _parameters(task.func, task.takes_context)
    return ConcurrencyPlan(
        task_path=task.module_path, template=template, limit=task.concurrency_limit,
        on_conflict=task.on_conflict, signature=signature, context_param=context_param,
        var_keyword=var_keyword, base_options=base_options,
    )  # fmt: skip


def check_template(template: str, func: Callable[..., Any], takes_context: bool) -> None:
    """Fail at definition when the template names no parameter of ``func`` (or uses ``{}``)."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise InvalidTask(f"concurrency_key {template!r} is not a valid template: {exc}") from None
    signature, context_param, var_keyword = _parameters(func, takes_context)
    names = set(signature.parameters) - {context_param}
    for field in fields:
        root = field.split(".", 1)[0].split("[", 1)[0]
        if not root or root.isdigit():
            raise InvalidTask(
                f"concurrency_key {template!r}: name the parameter ({{account_id}}), not a position"
            )
        if root not in names and var_keyword is None:
            raise InvalidTask(
                f"concurrency_key {template!r} names {root!r}, which is not a parameter of "
                f"{func.__qualname__} ({', '.join(sorted(names)) or 'none'})"
            )


def _parameters(
    func: Callable[..., Any], takes_context: bool
) -> tuple[inspect.Signature, str | None, str | None]:
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    context_param = params[0].name if takes_context and params else None
    var_keyword = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
    return signature, context_param, var_keyword
