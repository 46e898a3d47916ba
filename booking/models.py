"""Tortoise models of the booking package (the persistence adapter).

The clinic is the unit of isolation: every row of clinic data hangs off a :class:`Clinic`.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Clinic(Model):
    """A clinic (診療所) using Tsunagu. ``slug`` names its public page."""

    id = fields.UUIDField(primary_key=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    name_kana = fields.CharField(max_length=200)
    postal_code = fields.CharField(max_length=8)
    address = fields.CharField(max_length=300)
    phone = fields.CharField(max_length=20)
    time_zone = fields.CharField(max_length=64, default="Asia/Tokyo")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "booking_clinic"

    def __str__(self) -> str:
        return f"Clinic({self.slug})"
