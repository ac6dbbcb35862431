"""The reader: a bot's reply from the provider, read into a buffer as fast as it comes.

Rooms (``writer``) and stateless replies (``stateless``: /chat and /v1) read replies through ``Reader``: it fits the prompt to the
model's context, reads the provider's chunks as text a row and a page agree on, keeps the usage,
and turns every failure into a sentence a person can read.
"""

import asyncio
import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_noop

from bots.providers import ProviderError, Usage, get_provider
from chat import services
from chat.replies.prompt import fit
from chat.replies.speakers import Guard, stop_sequence
from chat.text import Seams

logger = logging.getLogger(__name__)

PARLEY_FAILED = gettext_noop("Parley failed while writing this reply.")
SPOKE_FOR_OTHERS = gettext_noop("The model wrote only other people's lines, not a reply of its own; press Retry.")
NOT_CONFIGURED = gettext_noop("The model is not configured: %(problem)s")
# Draws of a reply that opens with another speaker's line before it fails (see the README's figures).
ATTEMPTS = 2


def configured_provider(bot):
    """The provider that voices bot, or ProviderError saying how it is misconfigured."""
    try:
        return get_provider(bot)
    except ImproperlyConfigured as exc:
        raise ProviderError(ProviderError.FAILED, NOT_CONFIGURED % {"problem": exc}) from exc


class Reader:
    """Reads one reply: ``run`` fills ``pieces`` and sets ``arrived``; the caller takes text as it likes.

    ``ended`` is set, then ``arrived``, as the last thing ``run`` does; by then ``error`` is the
    ProviderError that ended the reply early, if any, and ``usage`` the tokens the provider counted.
    """

    def __init__(self, provider):
        self.provider = provider
        self.pieces = []
        self.seams = Seams()
        self.usage = None
        self.error = None
        self.ended = False
        self.arrived = asyncio.Event()

    async def run(self, bot, newest_first, speakers=()):
        """Fit the prompt (the bot's and the history, newest first, as (role, content)), then read the reply.

        speakers: the room's other speakers, most recent first; the reply stops where the model
        starts a line of theirs (``speakers.Guard``).
        """
        provider, max_tokens = self.provider, bot.max_tokens or settings.REPLY_MAX_TOKENS
        try:
            # Off the event loop and off the database lanes: counting tokens takes a while.
            prompt = await services.run(
                "prompts", fit, bot, newest_first, context_tokens=provider.context_tokens, max_tokens=max_tokens,
                count_tokens=provider.count_tokens,
            )
            stop = [stop_sequence(name) for name in speakers[:provider.max_stop]]
            for attempt in range(ATTEMPTS):
                guard = Guard([bot.key, bot.name], speakers) if speakers else None
                await self._read(provider.stream(prompt, max_tokens=max_tokens, stop=stop), guard)
                if guard is None or guard.spoke:
                    break
                # Nothing of its own (cut at once, or stopped there): a fresh draw (the model samples) usually speaks.
                logger.info("%s wrote nothing of its own (attempt %d)", bot.key, attempt + 1)
            else:
                if guard.cut:
                    raise ProviderError(ProviderError.FAILED, SPOKE_FOR_OTHERS)
        except ProviderError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - the reply ends with a sentence, never a torn stream
            logger.exception("reading a reply from %s failed", type(provider).__name__)
            self.error = ProviderError(ProviderError.FAILED, PARLEY_FAILED)
            self.error.__cause__ = exc
        finally:
            self.ended = True
            self.arrived.set()

    async def _read(self, chunks, guard):
        """Read one stream into pieces, through guard if any, until it ends or the guard cuts it."""
        try:
            async for chunk in chunks:
                if chunk.usage:
                    self.usage = chunk.usage if self.usage is None else Usage(
                        self.usage.prompt_tokens + chunk.usage.prompt_tokens,
                        self.usage.completion_tokens + chunk.usage.completion_tokens,
                    )
                text = guard.feed(chunk.text) if guard and chunk.text else chunk.text
                if text:
                    self.pieces.append(text)
                    self.arrived.set()
                if guard and guard.cut:
                    return  # another speaker's line began: read (and pay for) no more of it
        finally:
            # Ended, failed or stopped: what the guard held back is the model's text too (nothing, after a cut).
            if guard and (text := guard.end()):
                self.pieces.append(text)
                self.arrived.set()
            # Cancelled (Stop, shutdown, a client gone) or cut: closing the generator closes the upstream now.
            await chunks.aclose()

    def take(self, final=False):
        """All text read since the last take, tidied, as one piece (final: nothing held back)."""
        text = self.seams.feed("".join(self.pieces))
        self.pieces = []
        return text + self.seams.end() if final else text

    def take_each(self, final=False):
        """The chunks read since the last take, tidied, one by one (the direct path sends each as its
        own event; the demo's design writes each); final: with what was held back."""
        pieces, self.pieces = self.pieces, []
        taken = [self.seams.feed(piece) for piece in pieces]
        return taken + [self.seams.end()] if final else taken
