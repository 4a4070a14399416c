"""django-cors-headers, run in sync mode.

Which origins may call a widget's API is per widget, in the database, so the CORS check
queries the ORM (assistant.apps.widget_cors_allowed). The stock middleware runs async
under ASGI, where the ORM may not be used; in sync mode Django runs it in a thread.
"""

from __future__ import annotations

from corsheaders.middleware import CorsMiddleware


class WidgetCorsMiddleware(CorsMiddleware):
    async_capable = False
