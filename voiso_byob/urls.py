from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from campaigns.api import CampaignViewSet, DoNotCallViewSet
from reporting import dashboard_views
from reporting.api import telephony_events
from reporting.calls_api import CallViewSet
from reporting.reports import api as reports_api
from reporting.webhooks import provider_webhook
from routing.api import FlowViewSet, PhoneNumberViewSet, QueueViewSet
from routing.telephony import telephony_refer, telephony_route
from virtual_agents.api import IntegrationViewSet, VirtualAgentViewSet
from voiso_byob import views
from voiso_byob.api import InvitationViewSet, MemberViewSet

# Under /api/ Django's own 400/403/404/500 answers take the API's error shape (voiso_byob.api_errors).
handler400 = "voiso_byob.api_errors.handler400"
handler403 = "voiso_byob.api_errors.handler403"
handler404 = "voiso_byob.api_errors.handler404"
handler500 = "voiso_byob.api_errors.handler500"

router = SimpleRouter()
router.register("queues", QueueViewSet, basename="queue")
router.register("numbers", PhoneNumberViewSet, basename="number")
router.register("flows", FlowViewSet, basename="flow")
router.register("members", MemberViewSet, basename="member")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("virtual-agents", VirtualAgentViewSet, basename="virtual-agent")
router.register("calls", CallViewSet, basename="call")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("dnc", DoNotCallViewSet, basename="dnc")

urlpatterns = [
    # The SIP layer's endpoints, exactly as the telephony contract names them (no trailing slash).
    # First in the table: they answer every call, and resolving walks the patterns in order.
    path("api/v1/telephony/route", telephony_route, name="telephony_route"),
    path("api/v1/telephony/refer", telephony_refer, name="telephony_refer"),
    path("api/v1/telephony/events", telephony_events, name="telephony_events"),
    path("", dashboard_views.dashboard, name="dashboard"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("switch/", views.switch_center, name="switch_center"),
    path("profile/", views.profile, name="profile"),
    path("members/", views.member_list, name="member_list"),
    path("members/new/", views.member_create, name="member_create"),
    path("members/<uuid:pk>/", views.member_edit, name="member_edit"),
    path("members/<uuid:pk>/delete/", views.member_delete, name="member_delete"),
    path("members/invitations/<uuid:pk>/resend/", views.invitation_resend, name="invitation_resend"),
    path("members/invitations/<uuid:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    # Public: the token in the link is the credential (until the person signs in or signs up).
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("api-keys/", views.api_key_list, name="api_key_list"),
    path("api-keys/new/", views.api_key_create, name="api_key_create"),
    path("api-keys/<uuid:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("audit/", views.audit_list, name="audit_list"),
    path("virtual-agents/", include("virtual_agents.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("reports/", include("reporting.report_urls")),
    path("live/", include("reporting.live_urls")),
    path("calls/", include("reporting.urls")),
    path("routing/", include("routing.urls")),
    # Bot providers' post-call reports; the provider's signature is the authentication.
    path("api/v1/webhooks/<str:provider>/<uuid:integration_id>/", provider_webhook, name="provider_webhook"),
    path("api/v1/reports/virtual-agents/", reports_api.virtual_agents_report, name="report_virtual_agents"),
    path("api/v1/reports/queues/", reports_api.queues_report, name="report_queues"),
    path("api/v1/reports/campaigns/", reports_api.campaigns_report, name="report_campaigns"),
    path("api/v1/", include(router.urls)),
    # The schema describes the API, not anyone's data: public, so clients can be generated.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="api_schema"),
    # The split view serves Swagger UI's start-up script as a file (/api/docs/?script), not inline:
    # the page runs under the same Content-Security-Policy as the portal.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api_schema", permission_classes=[AllowAny]),
        name="api_docs",
    ),
    path("admin/", admin.site.urls),
]
