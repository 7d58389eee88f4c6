from django.contrib import admin

from core.models import AuditEntry, Grant, Job


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "host", "guest")
    list_filter = ("role",)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created", "actor_name", "action", "target_type", "target_name", "result")
    list_filter = ("result", "action")
    search_fields = ("actor_name", "target_name", "detail")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "target_name", "actor_name", "status", "progress", "created")
    list_filter = ("status", "kind")
