"""Everything but the login page, static files and the health check requires login."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse

OPEN_PREFIXES = ("/accounts/login/", "/static/", "/healthz")


class LoginRequiredEverywhere:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated or request.path.startswith(OPEN_PREFIXES):
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"error": "authentication required"}, status=401)
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
