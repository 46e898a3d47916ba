"""Clinic bridge: the dial-out agent protocol, the portal-side hub, and karte/ORCA adapters."""

__all__: list[str] = []
