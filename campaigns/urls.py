from django.urls import path

from campaigns.views import campaigns, dnc

app_name = "campaigns"

urlpatterns = [
    path("", campaigns.campaign_list, name="campaign_list"),
    path("new/", campaigns.campaign_create, name="campaign_create"),
    path("dnc/", dnc.dnc_list, name="dnc_list"),
    path("dnc/add/", dnc.dnc_add, name="dnc_add"),
    path("dnc/import/", dnc.dnc_import, name="dnc_import"),
    path("dnc/<uuid:entry_pk>/remove/", dnc.dnc_remove, name="dnc_remove"),
    path("<uuid:pk>/", campaigns.campaign_detail, name="campaign_detail"),
    path("<uuid:pk>/edit/", campaigns.campaign_edit, name="campaign_edit"),
    path("<uuid:pk>/leads/import/", campaigns.lead_import_create, name="lead_import_create"),
    path(
        "<uuid:pk>/leads/import/<uuid:import_pk>/rejects.csv",
        campaigns.lead_import_rejects,
        name="lead_import_rejects",
    ),
    path("<uuid:pk>/dnc/", dnc.dnc_list, name="campaign_dnc_list"),
    path("<uuid:pk>/dnc/add/", dnc.dnc_add, name="campaign_dnc_add"),
    path("<uuid:pk>/dnc/import/", dnc.dnc_import, name="campaign_dnc_import"),
    # Last: start, pause, stop; any other word is a 404 from the view.
    path("<uuid:pk>/<slug:action>/", campaigns.campaign_transition, name="campaign_transition"),
]
