from django.urls import path

from core import views

urlpatterns = [
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("api/jobs/running/", views.jobs_running_json, name="jobs-running"),
    path("api/jobs/<int:pk>/", views.job_json, name="job-json"),
    path("audit/", views.audit_list, name="audit"),
]
