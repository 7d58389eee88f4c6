from core.policy import Action, can, global_role


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    path = request.path
    sections = [("Hosts", "/hosts/"), ("Guests", "/guests/"), ("Jobs", "/jobs/"), ("Reports", "/reports/")]
    if can(user, Action.ADMIN):
        sections.append(("Admin", "/admin/"))
    return {
        "nav_sections": [(label, url, path.startswith(url)) for label, url in sections],
        "user_role": global_role(user) or "restricted",
    }
