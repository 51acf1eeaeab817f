"""Fill queue_entered_at / queue_answered_at (0006) on records folded before they existed.

Each record that names a queue is folded again from its stored events, exactly as ingestion does
(reporting.assemble), and only those two fields are written. Records without a queue have neither.
"""

from django.conf import settings
from django.db import migrations


def backfill(apps, schema_editor):
    from reporting.assemble import FoldSettings, StoredEvent, assemble

    CallRecord = apps.get_model("reporting", "CallRecord")
    CallEvent = apps.get_model("reporting", "CallEvent")
    fold = FoldSettings(bot_abandon_seconds=float(settings.BOT_ABANDON_SECONDS))
    records = CallRecord.objects.filter(queue__isnull=False, queue_entered_at__isnull=True)
    for record in records.only("pk", "contact_center_id", "call_id").iterator(chunk_size=500):
        events = [
            StoredEvent(e.event_id, e.type, e.occurred_at, e.data, e.refs)
            for e in CallEvent.objects.filter(
                contact_center_id=record.contact_center_id, call_id=record.call_id
            )
        ]
        folded = assemble(events, fold).record
        if folded.queue_entered_at is not None:
            CallRecord.objects.filter(pk=record.pk).update(
                queue_entered_at=folded.queue_entered_at, queue_answered_at=folded.queue_answered_at
            )


class Migration(migrations.Migration):
    dependencies = [("reporting", "0006_record_queue_entry")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
