from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Reporting"

    def ready(self) -> None:
        import campaigns.dialer
        import routing.route
        from reporting import signals
        from reporting.queries import active_calls_by_bot, queue_waiting

        signals.connect()
        # SQLite lacks the reports' bucketing and percentile functions: added per connection.
        from django.db.backends.signals import connection_created

        from reporting.reports.sql import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="reporting.reports.sql")
        # The dialer paces campaigns by their handoff queues' callers, which call records know.
        campaigns.dialer.queue_load = queue_waiting
        # While Redis is down, routing counts a bot's calls from the records instead of its counter.
        routing.route.count_active_calls = active_calls_by_bot
