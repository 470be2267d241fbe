"""The test project's URLs: the Django admin (tests/admin) and a view that enqueues (tests/views)."""

from django.contrib import admin
from django.urls import path

from tests import views

urlpatterns = [path("admin/", admin.site.urls), path("enqueue/", views.enqueue)]
