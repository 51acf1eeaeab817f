from django.apps import AppConfig


class VirtualAgentsConfig(AppConfig):
    name = "virtual_agents"
    verbose_name = "Virtual agents"
