"""Existing records into the new rollups (what `manage.py rebuild_rollups` does).

It runs today's reporting.rollups on purpose: the rollups are derived data, and a database
migrated from scratch has no records to roll up, so nothing runs then.
"""

from django.db import migrations


def build(apps, schema_editor):
    CallRecord = apps.get_model("reporting", "CallRecord")
    if not CallRecord.objects.exists():
        return
    from reporting.rollups import rebuild_rollups

    # order_by(): the model's ordering would join its columns to the DISTINCT (a row per record).
    for center_id in CallRecord.objects.order_by().values_list("contact_center_id", flat=True).distinct():
        rebuild_rollups(center_id=center_id)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0008_rollups")]

    operations = [migrations.RunPython(build, migrations.RunPython.noop, elidable=True)]
