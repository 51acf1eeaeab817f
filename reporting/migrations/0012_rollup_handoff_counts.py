"""The call rollups count their records' handoffs by state (the virtual agents' series).

Then every center's rollups are rebuilt, as 0009 once did: the latest migration that changes the
rollups does it (today's reporting.rollups writes today's columns)."""

from django.db import migrations, models


def rebuild(apps, schema_editor):
    """What `manage.py rebuild_rollups` does, for the rows already there (today's
    reporting.rollups on purpose: the rollups are derived data)."""
    from reporting.rollups import rebuild_every_center

    rebuild_every_center(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0011_stale_buckets"),
    ]

    operations = [
        migrations.AddField(
            model_name="callrollup",
            name="handoffs",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="callrollup",
            name="handoffs_completed",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="callrollup",
            name="handoffs_failed",
            field=models.IntegerField(default=0),
        ),
        migrations.RunPython(rebuild, migrations.RunPython.noop, elidable=True),
    ]
