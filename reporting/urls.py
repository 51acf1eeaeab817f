from django.urls import path

from reporting import views

app_name = "reporting"

urlpatterns = [
    path("", views.call_list, name="call_list"),
    path("export.csv", views.call_export, name="call_export"),
    path("export.xlsx", views.call_export_xlsx, name="call_export_xlsx"),
    # A SIP Call-ID may hold '/', '@' and more: `path` takes it whole; reverse() percent-encodes it.
    path("<path:call_id>/", views.call_detail, name="call_detail"),
]
