from django.apps import AppConfig


class VTasksConfig(AppConfig):
    name = "vtasks"
    label = "vtasks"
    verbose_name = "vtasks"
    default_auto_field = "django.db.models.BigAutoField"
