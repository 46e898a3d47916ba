"""Device hub: Bluetooth GATT / IEEE-11073 decoding, HL7 v2 over MLLP, readings to observations."""

__all__: list[str] = []
