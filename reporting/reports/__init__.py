"""Supervisor reports (issue #14): virtual agents, queues, campaigns.

    form = ReportFilterForm(request.GET, center=center)      # filters.py: the one parser
    filters = form.filters()                                 # a frozen ReportFilters
    virtual_agent_report(filters) / queue_report(filters) / campaign_report(filters)
        -> {"tz", "start", "end", "interval", "totals", "rows", "series"}
    drilldown.calls_query(filters, report, figure, row=None, bucket=None) -> the Calls page's query string

Every figure is a FILTER aggregate over one cohort (`cohort(filters)`: calls by their start in
the window); the metric definitions are in each report module's docstring and in the README.
"""
