"""Outcomes read ``USE_TZ`` once, and again when it changes, as ``timezone.now()`` would."""

from __future__ import annotations

from django.test import override_settings

from vtasks import outcomes


def test_the_clock_follows_use_tz_when_it_changes():
    assert outcomes._now().tzinfo is not None  # the test settings have USE_TZ = True
    with override_settings(USE_TZ=False):
        assert outcomes._now().tzinfo is None
    assert outcomes._now().tzinfo is not None
