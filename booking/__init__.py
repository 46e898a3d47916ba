"""Booking: clinics, practitioners, menus, hours, slots, appointments, waitlist and reminders."""

__all__: list[str] = []
