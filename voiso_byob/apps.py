from django.apps import AppConfig


class VoisoByobConfig(AppConfig):
    name = "voiso_byob"
    verbose_name = "Core: contact centers, members, extensions, API keys"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from voiso_byob import schema  # noqa: F401 - registers the OpenAPI auth extension
        from voiso_byob.access import pin_center_at_login

        # Django's own sign-in event: the one place every login (portal, admin, tests) passes.
        user_logged_in.connect(pin_center_at_login, dispatch_uid="voiso-pin-center-at-login")
