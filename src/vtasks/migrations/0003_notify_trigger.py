"""On PostgreSQL, ``NOTIFY vtasks`` after each INSERT statement on the task table.

Idle workers of the postgres driver LISTEN on that channel and claim at once instead of waiting for
their next poll. The trigger is per statement, so a bulk insert notifies once, and PostgreSQL sends
the notification when the inserting transaction commits (never for a rolled-back enqueue). Other
databases poll only: there this migration does nothing.
"""

from django.db import migrations

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION vtasks_notify_task_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vtasks', '');
    RETURN NULL;
END;
$$
"""
CREATE_TRIGGER = """
CREATE TRIGGER vtasks_task_notify
AFTER INSERT ON vtasks_task
FOR EACH STATEMENT EXECUTE FUNCTION vtasks_notify_task_inserted()
"""
DROP_TRIGGER = "DROP TRIGGER IF EXISTS vtasks_task_notify ON vtasks_task"
DROP_FUNCTION = "DROP FUNCTION IF EXISTS vtasks_notify_task_inserted()"


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION)
    schema_editor.execute(DROP_TRIGGER)
    schema_editor.execute(CREATE_TRIGGER)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(DROP_TRIGGER)
    schema_editor.execute(DROP_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("vtasks", "0002_taskrecord_options")]

    operations = [migrations.RunPython(create_trigger, drop_trigger, elidable=False)]
