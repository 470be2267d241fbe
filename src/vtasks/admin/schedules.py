"""The fired slots of recurring schedules (database backend), read-only, with each schedule's next
slot when ``VTASKS_SCHEDULE`` still defines it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from vtasks.admin.common import admin_database
from vtasks.models import ScheduleSlot
from vtasks.scheduler import schedules_from_settings


@admin.register(ScheduleSlot)
class ScheduleSlotAdmin(admin.ModelAdmin):
    list_display = ("schedule", "slot", "task_id", "fired_at", "next_slot")
    list_filter = ("schedule",)
    ordering = ("-slot",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(admin_database())

    @admin.display(description="next slot")
    def next_slot(self, obj: ScheduleSlot) -> datetime | str:
        for schedule in schedules_from_settings():
            if schedule.name == obj.schedule:
                return schedule.next_slot(timezone.now())
        return "not in VTASKS_SCHEDULE"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a deleted slot row would let that slot fire again
