"""The task states the admin filters by, as ORM conditions on the task table.

``pending``: READY and due; ``scheduled``: READY with a future ``available_at`` (a ``run_after``
or a retry's back-off); ``running``; ``failed`` (the dead letters); ``orphaned``: RUNNING under a
process that is not alive (no row, or a heartbeat older than the alive threshold). Workers
release orphans by themselves; the admin shows them for the case where no worker is left to.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from vtasks.admin.common import alive_cutoff

STATES = [
    ("pending", "pending (due)"),
    ("scheduled", "scheduled (future)"),
    ("running", "running"),
    ("orphaned", "orphaned (dead process)"),
    ("failed", "failed (dead letter)"),
    ("successful", "successful"),
]


def state_q(state: str, db_alias: str) -> Q:
    from vtasks.models import ProcessRecord

    now = timezone.now()
    if state == "pending":
        return Q(status="READY", available_at__lte=now)
    if state == "scheduled":
        return Q(status="READY", available_at__gt=now)
    if state == "orphaned":
        alive = ProcessRecord.objects.using(db_alias).filter(heartbeat_at__gte=alive_cutoff(now))
        return Q(status="RUNNING") & ~Q(claimed_by__in=alive.values("id"))
    return Q(status=state.upper())


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return STATES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in dict(STATES):
            return queryset.filter(state_q(str(self.value()), queryset.db))
        return queryset
