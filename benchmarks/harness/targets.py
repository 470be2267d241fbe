"""The targets vtasks is held to, judged from one run's figures (a report, not an assertion)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.model import SystemResult

Getter = Callable[[SystemResult], float | None]


def sync_rate(r: SystemResult) -> float | None:
    return r.sync.rate if r.sync else None


def async_rate(r: SystemResult) -> float | None:
    return r.async_.rate if r.async_ else None


def bulk_rate(r: SystemResult) -> float | None:
    return r.bulk.rate if r.bulk else None


def process_rate(r: SystemResult) -> float | None:
    return r.process.rate if r.process else None


def p50(r: SystemResult) -> float | None:
    return r.latency.percentile(50) if r.latency else None


def p99(r: SystemResult) -> float | None:
    return r.latency.percentile(99) if r.latency else None


def sleep_rate(r: SystemResult, concurrency: int) -> float | None:
    run = next((run for run in r.sleep if run.concurrency == concurrency), None)
    return run.sleep_rate if run else None


def named(results: Sequence[SystemResult], get: Getter, name: str) -> tuple[str, float] | None:
    """One peer's figure, by name (the Valkey targets compare with django-vtasks)."""
    found = next((r for r in results if r.name == name), None)
    value = get(found) if found else None
    return None if value is None else (name, value)


def best_peer(
    results: Sequence[SystemResult], get: Getter, *, higher: bool = True
) -> tuple[str, float] | None:
    """The peer (not vtasks) with the best figure, and that figure."""
    figures = [(r.name, v) for r in results if r.name != "vtasks" and (v := get(r)) is not None]
    if not figures:
        return None
    return max(figures, key=lambda f: f[1]) if higher else min(figures, key=lambda f: f[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    text: str
    ok: bool | None  # None: not measurable in this run.
    detail: str

    @property
    def line(self) -> str:
        word = "PASS" if self.ok else ("MISS" if self.ok is False else "N/A ")
        return f"{word}  {self.text}: {self.detail}"


def _vtasks(results: Sequence[SystemResult]) -> SystemResult | None:
    return next((r for r in results if r.name == "vtasks"), None)


def judge(results: Sequence[SystemResult], pgbench_tps: float | None) -> list[Target]:
    mine = _vtasks(results)
    get = lambda f: f(mine) if mine else None  # noqa: E731
    return [
        _ratio_target(
            "process rate >= 5x the fastest peer",
            get(process_rate),
            best_peer(results, process_rate),
            5.0,
        ),
        _floor_target(
            "process rate >= 3,000 tasks/s per worker process", get(process_rate), 3000.0, "tasks/s"
        ),
        _sync_target(get(sync_rate), best_peer(results, sync_rate), pgbench_tps),
        _floor_target("bulk enqueue >= 20,000 tasks/s", get(bulk_rate), 20_000.0, "tasks/s"),
        _ceiling_target("p99 pickup latency <= 20 ms", get(p99), 20.0, "ms"),
    ]


def judge_valkey(results: Sequence[SystemResult]) -> list[Target]:
    mine = _vtasks(results)
    get = lambda f: f(mine) if mine else None  # noqa: E731
    return [
        _ratio_target(
            "process rate >= 3x django-vtasks", get(process_rate),
            named(results, process_rate, "django-vtasks"), 3.0,
        ),
        _ratio_target(
            "one-by-one sync enqueue >= 1.5x django-vtasks", get(sync_rate),
            named(results, sync_rate, "django-vtasks"), 1.5,
        ),
        _floor_target("bulk enqueue >= 100,000 tasks/s", get(bulk_rate), 100_000.0, "tasks/s"),
        _ceiling_target("p99 pickup latency <= 1 ms", get(p99), 1.0, "ms"),
        _floor_target(
            "50 ms async sleeps at concurrency 100 >= 1,900 tasks/s",
            get(lambda r: sleep_rate(r, 100)), 1900.0, "tasks/s",
        ),
        _floor_target(
            "50 ms async sleeps at concurrency 1,000 >= 10,000 tasks/s",
            get(lambda r: sleep_rate(r, 1000)), 10_000.0, "tasks/s",
        ),
    ]  # fmt: skip


def _ratio_target(
    text: str, mine: float | None, peer: tuple[str, float] | None, factor: float
) -> Target:
    if mine is None or peer is None:
        return Target(text=text, ok=None, detail="not measured")
    ratio = mine / peer[1]
    return Target(
        text=text,
        ok=ratio >= factor,
        detail=f"{mine:,.0f} vs {peer[0]} {peer[1]:,.0f} = {ratio:.2f}x",
    )


def _floor_target(text: str, mine: float | None, floor: float, unit: str) -> Target:
    if mine is None:
        return Target(text=text, ok=None, detail="not measured")
    return Target(text=text, ok=mine >= floor, detail=f"{mine:,.0f} {unit}")


def _ceiling_target(text: str, mine: float | None, ceiling: float, unit: str) -> Target:
    if mine is None:
        return Target(text=text, ok=None, detail="not measured")
    return Target(text=text, ok=mine <= ceiling, detail=f"{mine:,.1f} {unit}")


def _sync_target(
    mine: float | None, peer: tuple[str, float] | None, pgbench_tps: float | None
) -> Target:
    text = "one-by-one sync enqueue >= min(2x the fastest peer, 80% of the pgbench limit)"
    bars = []
    if peer is not None:
        bars.append((2 * peer[1], f"2x {peer[0]} ({peer[1]:,.0f})"))
    if pgbench_tps is not None:
        bars.append((0.8 * pgbench_tps, f"80% of pgbench ({pgbench_tps:,.0f})"))
    if mine is None or not bars:
        return Target(text=text, ok=None, detail="not measured")
    bar, name = min(bars)
    share = f"; {mine / pgbench_tps:.0%} of pgbench" if pgbench_tps else ""
    return Target(
        text=text, ok=mine >= bar, detail=f"{mine:,.0f} tasks/s vs {bar:,.0f} = {name}{share}"
    )
