"""Room sockets by the address they come from: capped per address in each process, and a guest
without a session counted once per address in presence however many sockets they open."""

from collections import Counter
from types import SimpleNamespace

from django.conf import settings
from django.utils.crypto import salted_hmac

from chat import identity, limits, services

# A socket past its address's share is accepted and closed at once with this code (429, too many
# requests, in the application range Daphne allows), so the client can tell why.
TOO_MANY = 4029


def of_scope(scope):
    """The socket's client address as the rate limits count it (X-Forwarded-For when trusted; "" for loopback)."""
    headers = dict(scope.get("headers", ()))
    meta = {"REMOTE_ADDR": (scope.get("client") or ("unknown",))[0]}
    if b"x-forwarded-for" in headers:
        meta["HTTP_X_FORWARDED_FOR"] = headers[b"x-forwarded-for"].decode("latin-1")
    return limits.counted_address(SimpleNamespace(META=meta))


def present_as(sender, had_token, address):
    """Who a socket's sender is in presence: a guest whose session never had a token (a fresh one
    every socket) is the address's one anonymous guest; anyone else is themselves."""
    if sender.kind != identity.Kind.GUEST or had_token:
        return sender
    ref = "address-" + salted_hmac("parley.presence", address).hexdigest()[:16]  # no address in the cache
    return identity.Sender(identity.Kind.GUEST, ref, sender.name, named=False)


class Addresses:
    """How many room sockets each address has open in this process."""

    def __init__(self):
        self.open = Counter()

    def admit(self, address):
        """Count one more socket of address: False when it already has ROOM_SOCKETS_PER_ADDRESS open here
        ("", loopback, is not counted)."""
        if not address:
            return True
        if self.open[address] >= settings.ROOM_SOCKETS_PER_ADDRESS:
            return False
        self.open[address] += 1
        return True

    def leave(self, address):
        """A socket of address closed."""
        if not address:
            return
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


def addresses():
    """The socket counts of the running event loop."""
    return services.current().part(Addresses)
