"""The regional calling rules known when this was written, as data staff can edit in admin.

Area codes are those phonenumbers 9.0.43's geocoder places in the state (+1 NPA, the whole NPA):
a number carries no state, and about 15 % of Floridians keep an out-of-state code, which no
dialer can see.
"""

from datetime import date, time

from django.db import migrations

RULES = [
    {
        "region": "US-FL",
        "prefixes": [f"+1{npa}" for npa in (
            239, 305, 321, 324, 352, 386, 407, 448, 561, 645, 656, 689,
            727, 728, 754, 772, 786, 813, 850, 863, 904, 941, 954,
        )],
        "start": time(8, 0),
        "end": time(20, 0),
        "max_attempts_per_24h": 3,
        "source": "Florida Telephone Solicitation Act, Fla. Stat. 501.616 (SB 1120, 2021)",
        "effective_from": date(2021, 7, 1),
    },
    {
        "region": "US-OK",
        "prefixes": [f"+1{npa}" for npa in (405, 539, 572, 580, 918)],
        "start": time(8, 0),
        "end": time(20, 0),
        "max_attempts_per_24h": 3,
        "source": "Oklahoma Telephone Solicitation Act, Okla. Stat. tit. 15 §775C.4",
        "effective_from": date(2022, 11, 1),
    },
]


def add_rules(apps, schema_editor):
    Rule = apps.get_model("campaigns", "RegionalCallingRule")
    for rule in RULES:
        Rule.objects.update_or_create(region=rule["region"], defaults=rule)


def remove_rules(apps, schema_editor):
    apps.get_model("campaigns", "RegionalCallingRule").objects.filter(
        region__in=[rule["region"] for rule in RULES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial")]
    operations = [migrations.RunPython(add_rules, remove_rules)]
