"""Security headers for the browser UI, beside Django's SecurityMiddleware."""

# Scripts, styles, fonts and images come from this origin only: no inline scripts, no inline
# event handlers, no style attributes. So an injected `<script>` or `onerror=` cannot run even
# if escaping were ever missed somewhere. `frame-ancestors 'none'` is the modern twin of
# X-Frame-Options: DENY; `form-action 'self'` stops an injected form posting elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# HTML pages only. Under "no-referrer" (SECURE_REFERRER_POLICY, kept for every other response)
# browsers send `Origin: null` with a form's POST, and Django's CSRF check rightly refuses it:
# no form could be submitted. "same-origin" sends the Referer to this server only, never to
# another site, so a key in a URL still cannot leak through it (and the pages never put one there).
PAGE_REFERRER_POLICY = "same-origin"


class SecurityHeadersMiddleware:
    """Add the Content-Security-Policy to every response, and the pages' Referrer-Policy to HTML."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if response.get("Content-Type", "").startswith("text/html"):
            # Set before SecurityMiddleware's own setdefault, which then leaves it alone.
            response.headers.setdefault("Referrer-Policy", PAGE_REFERRER_POLICY)
        return response
