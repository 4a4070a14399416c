"""django-cors-headers, run in sync mode.

Which origins may call a widget's API is per widget, in the database, so the CORS check
queries the ORM (assistant.apps.widget_cors_allowed). The stock middleware runs async
under ASGI, where the ORM may not be used; in sync mode Django runs it in a thread.
"""

from __future__ import annotations

from corsheaders.middleware import CorsMiddleware
from django.core.handlers.asgi import ASGIRequest

from .streaming import iterate_in_thread


class WidgetCorsMiddleware(CorsMiddleware):
    async_capable = False


class AsyncBodiesMiddleware:
    """Under ASGI, files (WhiteNoise's static files, uploads, page images) stream from a
    thread as an async body; Django would otherwise read a sync iterator on the event loop
    (and warn "StreamingHttpResponse must consume synchronous iterators"). Under WSGI the
    response passes through untouched. Listed first, so it sees every response."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if isinstance(request, ASGIRequest) and response.streaming and not response.is_async:
            chunks = response.streaming_content  # the sync iterator, already as bytes
            response.streaming_content = iterate_in_thread(lambda: iter(chunks))
        return response


class DatabaseBusyMiddleware:
    """A locked or contended database answers 503 with Retry-After instead of a 500.

    SQLite waits SQLITE_BUSY_TIMEOUT seconds for a writer's lock before giving up; on
    PostgreSQL a serialization failure or deadlock is the same story. Either way the
    request did nothing and is safe to repeat, so the client is told to retry.
    """

    _BUSY = (
        "database is locked",
        "database table is locked",
        "could not serialize",
        "deadlock detected",
    )

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.db import OperationalError
        from django.http import JsonResponse

        if isinstance(exception, OperationalError) and any(
            b in str(exception).lower() for b in self._BUSY
        ):
            response = JsonResponse(
                {"error": "The server is busy; please try again in a moment."}, status=503
            )
            response["Retry-After"] = "2"
            return response
        return None


class NulRefusedMiddleware:
    """A NUL character in the path, the query or a form field is a 400.

    PostgreSQL can't store or even compare text holding NUL, so it would otherwise
    surface as a server error wherever such a value reaches a query.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        from django.http import JsonResponse

        fields = [request.path, *request.GET.values()]
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            fields += request.POST.values()
        if any("\x00" in value for value in fields):
            return JsonResponse({"error": "Requests may not contain NUL characters."}, status=400)
        return self.get_response(request)
