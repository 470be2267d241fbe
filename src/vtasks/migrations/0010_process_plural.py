from django.db import migrations


class Migration(migrations.Migration):
    """The admin index said "Processs": Django's default plural only appends an "s"."""

    dependencies = [
        ("vtasks", "0009_concurrency_slot"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="processrecord",
            options={"verbose_name": "process", "verbose_name_plural": "processes"},
        ),
    ]
