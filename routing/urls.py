from django.urls import path

from routing import views

app_name = "routing"

urlpatterns = [
    path("queues/", views.queue_list, name="queue_list"),
    path("queues/new/", views.queue_create, name="queue_create"),
    path("queues/<uuid:pk>/", views.queue_edit, name="queue_edit"),
    path("queues/<uuid:pk>/delete/", views.queue_delete, name="queue_delete"),
]
