"""The admin pages that are not one model's rows, hung under the task page's URLs
(``admin/vtasks/taskrecord/…``) so that they need no URL configuration of their own and sit behind
the admin's login like every admin page. Each view checks the model permissions it needs."""

from __future__ import annotations

from typing import Any

from django.urls import path

from vtasks.admin.backend_views import processes, queue_control, schedules
from vtasks.admin.dashboard import dashboard
from vtasks.admin.valkey_views import tasks


def extra_urls(site: Any) -> list[Any]:
    def page(route: str, view: Any, name: str) -> Any:
        return path(route, site.admin_view(view), {"site": site}, name=name)

    return [
        page("dashboard/", dashboard, "vtasks_dashboard"),
        page("backend/<str:alias>/queues/", queue_control, "vtasks_queue_control"),
        page("backend/<str:alias>/processes/", processes, "vtasks_processes"),
        page("backend/<str:alias>/schedules/", schedules, "vtasks_schedules"),
        page("backend/<str:alias>/tasks/", tasks, "vtasks_backend_tasks"),
    ]
