from django.apps import AppConfig


class VoisoByobConfig(AppConfig):
    name = "voiso_byob"
    verbose_name = "Core: contact centers, members, extensions, API keys"
