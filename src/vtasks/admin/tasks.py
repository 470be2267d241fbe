"""The task table in the admin: filtered by state, with retry, run now and delete.

Rows are read-only (a task's call is not edited by hand); the actions are the only changes. The
page also hosts the URLs of the pages that are not one model's rows (``urls.py``): the dashboard
and, for the Valkey backend, its tasks, processes and schedules.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.html import format_html_join

from vtasks.admin import db_actions
from vtasks.admin.common import admin_database, alive_cutoff, is_alive
from vtasks.admin.states import StateFilter
from vtasks.admin.urls import extra_urls
from vtasks.models import ProcessRecord, TaskRecord
from vtasks.wire import codec


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    change_list_template = "admin/vtasks/taskrecord/change_list.html"
    list_display = (
        "id", "task_path", "queue_name", "priority", "status", "available_at", "attempts",
        "claimed_by", "process_heartbeat", "finished_at",
    )  # fmt: skip
    list_filter = (StateFilter, "status", "queue_name", "backend")
    search_fields = ("id", "task_path")
    ordering = ("-seq",)
    list_per_page = 50
    actions = ("retry", "run_now")  # and the site-wide "delete selected"
    fields = (
        "id", "backend", "task_path", "queue_name", "priority", "status", "args", "kwargs",
        "run_after", "available_at", "enqueued_at", "started_at", "last_attempted_at",
        "finished_at", "attempts", "max_attempts", "claimed_by", "process_heartbeat",
        "worker_ids", "errors_display", "return_value", "unique_key", "expires_at", "options",
    )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        db = admin_database()
        heartbeat = ProcessRecord.objects.using(db).filter(id=OuterRef("claimed_by"))
        return (
            super()
            .get_queryset(request)
            .using(db)
            .annotate(heartbeat=Subquery(heartbeat.values("heartbeat_at")[:1]))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        read_only = {"show_save": False, "show_save_and_continue": False}
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), **read_only}
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Never: a save would write back every column as loaded, over a worker's changes."""

    def get_urls(self) -> list[Any]:
        return extra_urls(self.admin_site) + super().get_urls()

    # -- columns -------------------------------------------------------------------------------
    @admin.display(description="process heartbeat")
    def process_heartbeat(self, obj: TaskRecord) -> str:
        if obj.status != "RUNNING":
            return "-"
        heartbeat = getattr(obj, "heartbeat", None)
        if heartbeat is None:
            return "no process (orphaned)"
        verdict = "alive" if is_alive(heartbeat, alive_cutoff()) else "dead (orphaned)"
        return f"{heartbeat:%Y-%m-%d %H:%M:%S} ({verdict})"

    @admin.display(description="errors")
    def errors_display(self, obj: TaskRecord) -> str:
        try:
            errors = codec.loads(obj.errors or "[]")
        except ValueError:
            return obj.errors
        if not errors:
            return "-"
        return format_html_join(
            "",
            '<div class="vtasks-error"><strong>{}</strong><pre>{}</pre></div>',
            ((e.get("exception_class_path", "?"), e.get("traceback", "")) for e in errors),
        )

    # -- actions -------------------------------------------------------------------------------
    @admin.action(description="Retry (failed or orphaned tasks)", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = db_actions.retry(queryset)
        self.message_user(request, f"{count} task(s) put back to READY.", messages.SUCCESS)

    @admin.action(description="Run now (scheduled tasks)", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = db_actions.run_now(queryset)
        self.message_user(request, f"{count} task(s) due now.", messages.SUCCESS)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        db_actions.delete(queryset)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        db_actions.delete(TaskRecord.objects.using(admin_database()).filter(seq=obj.seq))
