from django.urls import path

from routing.views import builder, flows, numbers, queues, transfers

app_name = "routing"

urlpatterns = [
    path("queues/", queues.queue_list, name="queue_list"),
    path("queues/new/", queues.queue_create, name="queue_create"),
    path("queues/<uuid:pk>/", queues.queue_edit, name="queue_edit"),
    path("queues/<uuid:pk>/delete/", queues.queue_delete, name="queue_delete"),
    path("numbers/", numbers.number_list, name="number_list"),
    path("numbers/new/", numbers.number_create, name="number_create"),
    path("numbers/<uuid:pk>/", numbers.number_edit, name="number_edit"),
    path("numbers/<uuid:pk>/delete/", numbers.number_delete, name="number_delete"),
    path("external-transfers/", transfers.external_transfers, name="external_transfers"),
    path("flows/", flows.flow_list, name="flow_list"),
    path("flows/new/", flows.flow_create, name="flow_create"),
    path("flows/<uuid:pk>/", builder.flow_detail, name="flow_detail"),
    path("flows/<uuid:pk>/settings/", flows.flow_settings, name="flow_settings"),
    path("flows/<uuid:pk>/delete/", flows.flow_delete, name="flow_delete"),
    path("flows/<uuid:pk>/versions/", flows.flow_versions, name="flow_versions"),
    path("flows/<uuid:pk>/versions/<int:number>/", builder.flow_version, name="flow_version"),
    path("flows/<uuid:pk>/versions/<int:number>/restore/", flows.flow_restore, name="flow_restore"),
    path("flows/<uuid:pk>/publish/", builder.flow_publish, name="flow_publish"),
    path("flows/<uuid:pk>/arrange/", builder.flow_arrange, name="flow_arrange"),
    path("flows/<uuid:pk>/test-call/", builder.flow_test_call, name="flow_test_call"),
    path("flows/<uuid:pk>/nodes/new/", builder.node_add, name="flow_node_add"),
    path("flows/<uuid:pk>/nodes/<slug:node_id>/", builder.node_edit, name="flow_node"),
    path("flows/<uuid:pk>/nodes/<slug:node_id>/delete/", builder.node_delete, name="flow_node_delete"),
    path("flows/<uuid:pk>/nodes/<slug:node_id>/move/", builder.node_move, name="flow_node_move"),
]
