from django.contrib.auth import HASH_SESSION_KEY

from .services import uses_default_password

_CHECKED_SESSION_KEY = "_default_password_checked_for"
_RESULT_SESSION_KEY = "_default_password_in_use"


def default_password_banner(request) -> dict:
    """Tell templates whether to warn that the superuser still signs in with the default password.

    Checking a password costs a slow hash, so the answer is kept in the session beside the
    session's auth hash, which changes whenever the password does.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_superuser:
        return {"uses_default_password": False}
    session = request.session
    auth_hash = session.get(HASH_SESSION_KEY)
    if auth_hash is None or session.get(_CHECKED_SESSION_KEY) != auth_hash:
        session[_RESULT_SESSION_KEY] = uses_default_password(user)
        session[_CHECKED_SESSION_KEY] = auth_hash
    return {"uses_default_password": session[_RESULT_SESSION_KEY]}
