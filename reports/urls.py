from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("overview.csv", views.overview_csv, name="overview_csv"),
    path("forecast/", views.forecast, name="forecast"),
    path("forecast.csv", views.forecast_csv, name="forecast_csv"),
    path("rightsizing/", views.rightsizing, name="rightsizing"),
    path("rightsizing.csv", views.rightsizing_csv, name="rightsizing_csv"),
    path("breakdown/", views.breakdown, name="breakdown"),
    path("breakdown.csv", views.breakdown_csv, name="breakdown_csv"),
]
