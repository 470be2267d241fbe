"""The Django admin for vtasks (imported by ``django.contrib.admin``'s autodiscovery).

* Database backend: model pages for the task table (filtered by state: pending, scheduled,
  running with its process's heartbeat, orphaned, failed with errors and tracebacks; actions
  retry, run now, delete), the process table and the fired schedule slots. They show the database
  named by ``VTASKS_ADMIN_DATABASE`` (default ``"default"``).
* Every vtasks backend in ``TASKS`` (database or Valkey): a dashboard (queues with depth, oldest
  age, throughput, failures and pause/resume; live processes by kind; a throughput chart), the
  process table and the schedules with their last and next slot, read through the backend.
* Valkey backend: a task page per state with the same actions, through the backend's methods
  (the "read-only adapter": nothing is written except by those methods).

The non-model pages hang under the task page's URLs (``urls.py``), so a project needs nothing
beyond ``path("admin/", admin.site.urls)``. Access follows the model permissions: viewing needs
``vtasks.view_taskrecord`` (processes: ``view_processrecord``, schedules: ``view_scheduleslot``),
retry/run now/pause/resume ``change_taskrecord``, delete ``delete_taskrecord``.
"""

from vtasks.admin.processes import ProcessRecordAdmin
from vtasks.admin.schedules import ScheduleSlotAdmin
from vtasks.admin.tasks import TaskRecordAdmin

__all__ = ["ProcessRecordAdmin", "ScheduleSlotAdmin", "TaskRecordAdmin"]
