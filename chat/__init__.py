"""Parley's Django app: messages, rooms, the reply job and the broadcaster."""
