"""Delivery to pages: the broadcaster, its frames, the per-process fan-out and the room socket."""
