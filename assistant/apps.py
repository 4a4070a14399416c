from __future__ import annotations

import re

from django.apps import AppConfig

_WIDGET_API = re.compile(r"^/widget/api/(?P<public_id>[\w-]+)/")


def widget_cors_allowed(sender, request, **kwargs) -> bool:
    """CORS for a widget's API only from the origins that widget's owner listed."""
    match = _WIDGET_API.match(request.path_info)
    origin = request.headers.get("origin")
    if not match or not origin:
        return False
    from .models import Widget
    from .widgets import origin_allowed

    widget = Widget.objects.filter(public_id=match["public_id"], enabled=True).first()
    return widget is not None and origin_allowed(widget=widget, origin=origin)


class AssistantConfig(AppConfig):
    name = "assistant"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        check_request_enabled.connect(widget_cors_allowed, dispatch_uid="docent-widget-cors")
