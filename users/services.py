"""Operations on users: the superuser bootstrap."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

if TYPE_CHECKING:
    from .models import User

logger = logging.getLogger(__name__)

DEFAULT_PASSWORD_WARNING = (
    "SECURITY WARNING: the superuser %r still uses the default password 'langflow'. "
    "Sign in and change it, or set LANGFLOW_SUPERUSER_PASSWORD before the first start."
)


def ensure_superuser() -> tuple[User, bool]:
    """Create the configured superuser if it does not exist; return ``(user, created)``.

    Safe when several workers start at once: the unique username decides the race and
    the losers read the winner's row. An existing user is never changed, so a password
    changed after the first start is kept.
    """
    User = get_user_model()
    username = settings.LANGFLOW_SUPERUSER
    created = False
    user = User.objects.filter(username=username).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User.objects.create_superuser(
                    username=username, email="", password=settings.LANGFLOW_SUPERUSER_PASSWORD
                )
                created = True
        except IntegrityError:
            user = User.objects.get(username=username)
    if uses_default_password(user):
        logger.warning(DEFAULT_PASSWORD_WARNING, username)
    return user, created


def uses_default_password(user) -> bool:
    return user.is_superuser and user.check_password(settings.LANGFLOW_DEFAULT_SUPERUSER_PASSWORD)
