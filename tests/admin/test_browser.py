"""The admin in a real browser (Debian's chromium through Playwright): log in as staff, retry a
failed task, run a worker, and see the task succeed.

Without chromium or Playwright the test skips, except under ``CI=true``, where it fails:
``scripts/bootstrap`` installs both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connections

from tests import storage, tasks
from tests.admin.conftest import ALL
from tests.helpers import work

CHROMIUM = os.environ.get("VTASKS_TEST_CHROMIUM", "/usr/bin/chromium")


def _browser_or_skip() -> None:
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[test]')"
    if problem is None and not shutil.which(CHROMIUM):
        problem = f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if problem and os.environ.get("CI") == "true":
        pytest.fail(f"CI: {problem}")
    if problem:
        pytest.skip(problem)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def live_url() -> Iterator[str]:
    """The test project served on a free loopback port, in a thread of this process."""
    django_app = get_wsgi_application()

    def app(environ: dict, start_response: Callable) -> object:
        try:
            return django_app(environ, start_response)
        finally:  # each request has a thread of its own: leave no connection behind in it
            connections.close_all()

    server = make_server("127.0.0.1", 0, app, _ThreadingServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _outside_the_browser_loop(fn: Callable[..., object], *args: object) -> None:
    """Run ``fn`` in a thread: Playwright's sync API keeps an event loop running in this one,
    where ``asyncio.run`` (the worker) and Django's ORM refuse to run."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


@pytest.fixture
def sqlite() -> Iterator[str]:
    from tests.conftest import storage_for

    yield from storage_for("default")


def test_retry_a_failed_task_in_the_browser_and_see_it_succeed(sqlite, live_url, tmp_path: Path):
    _browser_or_skip()
    from django.contrib.auth.models import Permission, User
    from playwright.sync_api import sync_playwright

    marker = str(tmp_path / "flaky")
    failing = tasks.flaky.using(backend=sqlite, max_attempts=1).enqueue(marker, 1)
    work(sqlite)
    assert storage.status(sqlite, failing.id) == "FAILED"

    name, password = f"browser-{secrets.token_hex(4)}", secrets.token_hex(8)
    user = User.objects.create_user(name, password=password, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="vtasks", codename__in=ALL)
    )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            try:
                page = browser.new_page()
                page.goto(
                    f"{live_url}/admin/login/?next=/admin/vtasks/taskrecord/%3Fstate%3Dfailed"
                )
                page.fill("#id_username", name)
                page.fill("#id_password", password)
                page.click("input[type=submit]")
                row = page.locator("#result_list tbody tr", has_text=failing.id)
                row.locator("input.action-select").check()
                page.select_option("select[name=action]", "retry")
                page.click("button[name=index]")
                assert "1 task(s) put back to READY" in page.inner_text(".messagelist")

                _outside_the_browser_loop(work, sqlite)

                page.goto(f"{live_url}/admin/vtasks/taskrecord/?state=successful")
                assert failing.id in page.inner_text("#result_list")
            finally:
                browser.close()
    finally:
        user.delete()
    assert storage.status(sqlite, failing.id) == "SUCCESSFUL"
