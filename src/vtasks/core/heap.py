"""The cyclic garbage collector around a command's start-up.

Importing Django, valkey-py and the runtime creates some hundred thousand long-lived objects, and
the collector walks them again and again while they are made (measured: the worker's imports took
207 ms with it, 187 ms without). The ``vtasks`` command pauses it for its start-up; ``settle``
then freezes what start-up made (moved out of every later collection: those objects live as long
as the process, and a forked child shares their pages instead of copying them when the collector
would touch them) and turns the collector back on for the long-lived part.

Only a pause made here is undone here: a process that disabled the collector on purpose keeps it
disabled.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Turn the collector off until ``settle`` or ``resume`` (when it was on)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def settle() -> None:
    """Start-up is over: freeze the objects it made and turn the collector back on."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def resume() -> None:
    """Turn the collector back on without freezing (a command that ends, or fails, early)."""
    global _paused
    if _paused:
        _paused = False
        gc.enable()
