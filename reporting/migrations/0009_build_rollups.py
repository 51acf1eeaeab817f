"""Existing records into the new rollups: now done by 0012, the latest migration that changes them.

The rebuild runs today's reporting.rollups (the rollups are derived data), which writes today's
columns: run here, before 0012 adds the handoff counts, it would fail. So only the latest
migration that changes the rollups rebuilds them; this one stays for the migration history.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("reporting", "0008_rollups")]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop, elidable=True)]
