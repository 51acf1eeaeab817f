from django.apps import AppConfig


class VoisoByobConfig(AppConfig):
    name = "voiso_byob"
    verbose_name = "Core: contact centers, members, extensions, API keys"

    def ready(self) -> None:
        from voiso_byob import schema  # noqa: F401 - registers the OpenAPI auth extension
