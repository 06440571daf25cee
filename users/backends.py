"""Password sign-in under the sign-in throttle, wherever Django's ``authenticate()`` is called."""

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from . import throttling


class ThrottledModelBackend(ModelBackend):
    """Django's ``ModelBackend``, with every password check counted by ``users.throttling``.

    The sign-in page and the admin's sign-in both authenticate here, so a lockout earned on one
    holds on the other. A locked-out client is refused (``SignInLocked``, a ``PermissionDenied``)
    before the password is hashed. Calls without a request (the shell, commands) have no client
    to count and are not throttled.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        check = super().authenticate
        if request is None or username is None or password is None:
            return check(request, username, password, **kwargs)
        return throttling.check_password(request, username, lambda: check(request, username, password, **kwargs))

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        return await sync_to_async(self.authenticate)(request, username, password, **kwargs)
