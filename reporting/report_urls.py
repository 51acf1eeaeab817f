"""The Reports page (mounted at /reports/ by voiso_byob.urls): one URL per tab, filters in the query."""

from django.urls import path, register_converter

from reporting import report_exports, report_views


class ReportTabConverter:
    """A tab's slug: anything else is a 404 before the view runs. Exports use it too."""

    regex = "|".join(report_views.TABS)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReportTabConverter, "report_tab")

app_name = "reports"

urlpatterns = [
    path("", report_views.reports_index, name="index"),
    path("<report_tab:tab>/", report_views.report_page, name="report"),
    path("<report_tab:tab>/export.<slug:fmt>", report_exports.report_export, name="export"),
]
