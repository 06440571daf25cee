from django.db import models


class Item(models.Model):
    """The one table the bare view queries (created by ``migrate --run-syncdb``)."""

    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name
