from django.apps import AppConfig


class VirtualAgentsConfig(AppConfig):
    name = "virtual_agents"
    verbose_name = "Virtual agents"

    def ready(self) -> None:
        from virtual_agents import checks  # noqa: F401 - registers the settings checks
