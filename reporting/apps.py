from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Reporting"

    def ready(self) -> None:
        import campaigns.dialer
        from reporting import signals
        from reporting.queries import queue_waiting

        signals.connect()
        # The dialer paces campaigns by their handoff queues' callers, which call records know.
        campaigns.dialer.queue_load = queue_waiting
