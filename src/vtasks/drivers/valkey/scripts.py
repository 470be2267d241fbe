"""The Lua scripts, read once from ``scripts/*.lua``, and how they are called.

Scripts run with EVALSHA (the SHA1 is computed locally, so no load round trip up front); a server
that does not know a script yet (first use, restart, ``SCRIPT FLUSH``) answers NOSCRIPT, and only
those calls are loaded and sent again. Several calls go out in one pipeline: one round trip.

The loading is a plain ``SCRIPT LOAD`` call, not a pipeline entry: a cluster client sends it to
every primary, where a keyless command in a cluster pipeline would have no node to go to. Every
script touches the keys of one hash slot only (a queue's ``{P:q:<queue>}`` keys, or the global
``{P}`` ones, never both), so a cluster routes each call whole to one node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from valkey.exceptions import NoScriptError

from vtasks.drivers.valkey.exchange import AsyncExchange, Command, Packed, exchange

#: Wake-up tokens kept per queue: enough to wake a pool of idle workers for a burst, few enough
#: that stale ones (nobody was waiting) cost an idle worker only a handful of empty claims.
WAKE_CAP = 16

NAMES = (
    "enqueue", "claim", "finish", "hand_back", "find_orphans",
    "register", "heartbeat", "deregister", "prune",
    "depths", "resume", "clear", "retry", "defer", "cc_acquire", "cc_release", "idle", "reclaim",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    text: str
    sha: str


@dataclass(frozen=True, slots=True)
class Call:
    """One script call: its keys and arguments (all sent as strings or bytes), and optionally
    the whole ``EVALSHA`` command already packed (sent as is by exchanges; pipelines, a
    cluster's, pack ``keys`` and ``args`` themselves)."""

    script: Script
    keys: Sequence[str]
    args: Sequence[Any]
    packed: bytes | None = None


#: A plain command sent after the scripts: its words and values, or ``Packed``.
After = Sequence[Any] | Packed


def load(name: str) -> Script:
    """``scripts/<name>.lua`` (also for the backend's own scripts, beside the driver's)."""
    text = resources.files("vtasks.drivers.valkey").joinpath("scripts", f"{name}.lua").read_text()
    return Script(name=name, text=text, sha=hashlib.sha1(text.encode()).hexdigest())


SCRIPTS: dict[str, Script] = {name: load(name) for name in NAMES}


def _queue(pipe: Any, calls: Sequence[Call], after: Sequence[After] = ()) -> None:
    for call in calls:
        # execute_command, not evalsha(): valkey-py's sync cluster pipeline blocks the method
        # (it cannot check one script's keys share a slot; ours always do) but routes the command.
        pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
    for command in after:
        pipe.execute_command(*(command.command if isinstance(command, Packed) else command))


def _missing(results: list[Any]) -> list[int]:
    return [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]


def _raise_errors(results: list[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def run(
    client: Any,
    calls: Iterable[Call],
    after: Sequence[After] = (),
    meanwhile: Callable[[], None] | None = None,
) -> list[Any]:
    """Run ``calls``, then the plain commands ``after``, in one round trip; script results only.

    ``after`` goes last so that its replies arrive with the scripts' (one read, not two).
    ``calls`` may be a generator: each call goes out as soon as it is built (see ``exchange``).
    ``meanwhile`` is called once, while the server works (see ``exchange``).
    """
    if not hasattr(client, "connection_pool"):  # a cluster client: its pipeline routes by slot
        if meanwhile is not None:
            meanwhile()
        return _run_pipeline(client, list(calls), after)
    if isinstance(calls, (list, tuple)):  # the usual single call: no generator to drive
        made: Sequence[Call] = calls
        commands: Iterable[Command] = [*map(_evalsha, calls), *map(_wire, after)]
    else:
        made = []

        def generate() -> Iterator[Command]:
            for call in calls:
                made.append(call)
                yield _evalsha(call)
            yield from map(_wire, after)

        commands = generate()
    results = exchange(client, commands, meanwhile)[: len(made)]
    missing = _missing(results)
    if missing:
        for script in {made[i].script for i in missing}:
            client.script_load(script.text)
        again = exchange(client, [_evalsha(made[i]) for i in missing])
        for i, result in zip(missing, again, strict=True):
            results[i] = result
    return _raise_errors(results)


def _evalsha(call: Call) -> Command:
    if call.packed is not None:
        return call.packed
    return ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


def _wire(command: After) -> Command:
    return command.data if isinstance(command, Packed) else command


def _run_pipeline(client: Any, calls: Sequence[Call], after: Sequence[After] = ()) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    _queue(pipe, calls, after)
    results = pipe.execute(raise_on_error=False)[: len(calls)]
    missing = _missing(results)
    if missing:
        for script in {calls[i].script for i in missing}:
            client.script_load(script.text)
        retry = client.pipeline(transaction=False)
        _queue(retry, [calls[i] for i in missing])
        for i, result in zip(missing, retry.execute(raise_on_error=False), strict=True):
            results[i] = result
    return _raise_errors(results)


async def arun(
    client: Any,
    calls: Sequence[Call],
    after: Sequence[After] = (),
    lane: AsyncExchange | None = None,
) -> list[Any]:
    """``run`` on an asyncio client: through ``lane`` when given (a non-cluster client's
    ``AsyncExchange``), else through the client's pipeline."""
    if lane is not None:
        commands = [_evalsha(call) for call in calls]
        results = (await lane.exchange([*commands, *map(_wire, after)]))[: len(calls)]
        missing = _missing(results)
        if missing:
            for script in {calls[i].script for i in missing}:
                await client.script_load(script.text)
            again = await lane.exchange([commands[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return _raise_errors(results)
    pipe = client.pipeline(transaction=False)
    _queue(pipe, calls, after)
    results = (await pipe.execute(raise_on_error=False))[: len(calls)]
    missing = _missing(results)
    if missing:
        for script in {calls[i].script for i in missing}:
            await client.script_load(script.text)
        retry = client.pipeline(transaction=False)
        _queue(retry, [calls[i] for i in missing])
        for i, result in zip(missing, await retry.execute(raise_on_error=False), strict=True):
            results[i] = result
    return _raise_errors(results)
