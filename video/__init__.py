"""Video: consult rooms, the waiting room, signaling, TURN credentials and the server-side peer."""

__all__: list[str] = []
