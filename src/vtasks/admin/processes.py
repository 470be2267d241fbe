"""The process table of the database backend, read-only: workers, schedulers, supervisors."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from vtasks.admin.common import admin_database, alive_cutoff, is_alive
from vtasks.models import ProcessRecord


@admin.register(ProcessRecord)
class ProcessRecordAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "hostname",
        "pid",
        "queues",
        "started_at",
        "heartbeat_at",
        "alive",
    )
    list_filter = ("kind", "hostname")
    ordering = ("kind", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(admin_database())

    @admin.display(boolean=True, description="alive")
    def alive(self, obj: ProcessRecord) -> bool:
        return is_alive(obj.heartbeat_at, alive_cutoff())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
