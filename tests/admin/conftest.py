"""Fixtures for the admin tests: logged-in staff clients with chosen permissions, and the admin
pointed at the database under test."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
from django.test import Client, override_settings

#: Every permission the vtasks admin checks.
ALL = (
    "view_taskrecord", "change_taskrecord", "delete_taskrecord", "view_processrecord",
    "view_scheduleslot",
)  # fmt: skip


@pytest.fixture(autouse=True)
def admin_settings() -> Iterator[None]:
    # ALLOWED_HOSTS: Django's own test runner adds "testserver"; this suite runs without it.
    # A long alive threshold: a process registered by a test stays alive however slow the machine.
    with override_settings(ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
                           VTASKS_ALIVE_THRESHOLD=600.0):  # fmt: skip
        yield


@pytest.fixture
def staff() -> Iterator[Callable[..., Client]]:
    """``staff(*codenames)``: a client logged in as a new staff user holding those permissions."""
    from django.contrib.auth.models import Permission, User

    made: list[int] = []

    def make(*codenames: str) -> Client:
        user = User.objects.create_user(f"staff-{secrets.token_hex(4)}", is_staff=True)
        made.append(user.pk)
        perms = Permission.objects.filter(content_type__app_label="vtasks", codename__in=codenames)
        assert perms.count() == len(set(codenames)), codenames
        user.user_permissions.set(perms)
        client = Client()
        client.force_login(user)
        return client

    yield make
    User.objects.filter(pk__in=made).delete()


@pytest.fixture
def admin_db(db_alias: str) -> Iterator[str]:
    """A database alias (SQLite, PostgreSQL, MariaDB), emptied, that the admin's model pages show."""
    with override_settings(VTASKS_ADMIN_DATABASE=db_alias):
        yield db_alias
