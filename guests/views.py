from django.core.paginator import Paginator
from django.shortcuts import render

from core.policy import visible_guests


def guest_list(request):
    guests = visible_guests(request.user).select_related("host")
    page = Paginator(guests, 100).get_page(request.GET.get("page"))
    return render(request, "guests/guest_list.html", {"page": page})
