from django.db import models


class Order(models.Model):
    """What a view saves in the same transaction as it enqueues a task."""

    number = models.CharField(max_length=20)
