"""Error pages people see with DEBUG off: Docent's layout and a way back.

404.html and 403.html are Django's own handlers' templates (they get the request);
500.html is rendered without any context, so it stands alone. A refused form (CSRF)
comes here so that it looks like the rest of the site too.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the form was sent without a valid token (often an old tab)."""
    context = {
        "title": "This form has expired",
        "explanation": "The page was open too long, or cookies are blocked for this site. "
        "Go back, reload the page and send the form again.",
    }
    return render(request, "403.html", context, status=403)
