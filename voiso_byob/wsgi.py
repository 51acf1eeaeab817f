"""WSGI entry point: production serves plain HTTP from here (faster than ASGI for sync views)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiso_byob.settings")

application = get_wsgi_application()

from voiso_byob.heap import freeze_loaded_heap  # noqa: E402 - needs Django set up

freeze_loaded_heap()
