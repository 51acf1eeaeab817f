"""The call rollups count their records' handoffs by state (the virtual agents' series)."""

from django.db import migrations, models


def rebuild(apps, schema_editor):
    """The new counts of the rows already there (what `manage.py rebuild_rollups` does; today's
    reporting.rollups on purpose, as 0009 explains)."""
    CallRecord = apps.get_model("reporting", "CallRecord")
    if not CallRecord.objects.exists():
        return
    from reporting.rollups import rebuild_rollups

    # order_by(): the model's ordering would join its columns to the DISTINCT (a row per record).
    for center_id in CallRecord.objects.order_by().values_list("contact_center_id", flat=True).distinct():
        rebuild_rollups(center_id=center_id)


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
