"""An appointment as an iCalendar event (.ics), for "add to calendar". Pure."""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

PRODUCT_ID = "-//Tsunagu//Booking//JA"


def appointment_ics(
    *,
    uid: str,
    start: datetime,
    end: datetime,
    summary: str,
    location: str,
    url: str,
    stamp: datetime,
) -> bytes:
    """One VEVENT. It names the clinic and the visit only: no patient name, no medical detail,
    since calendars are often shared."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", f"{uid}@tsunagu")
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("location", location)
    event.add("url", url)
    calendar.add_component(event)
    return bytes(calendar.to_ical())
