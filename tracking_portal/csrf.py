from django.middleware.csrf import CsrfViewMiddleware


class NoReferrerCsrfViewMiddleware(CsrfViewMiddleware):
    """Django's CSRF check, for pages served with Referrer-Policy: no-referrer.

    Under that policy a browser sends ``Origin: null`` with every form POST,
    even to its own site, so Django's origin check would refuse the portal's
    own forms. ``Sec-Fetch-Site`` is set by the browser alone (no page script
    can forge it); when it says the POST came from this very origin, a null
    Origin is the policy speaking, not a foreign page. The CSRF token is still
    checked as usual.
    """

    def _origin_verified(self, request):
        if request.META.get("HTTP_ORIGIN") == "null" and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin":
            return True
        return super()._origin_verified(request)
