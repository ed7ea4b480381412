"""Show a Discord answer as the model writes it: one message, edited as the text grows.

    streamer = DiscordStreamer(channel.send, intro=intro)
    outcome = await streamer.deliver(engine.answer_stream(question_id), run_blocking)

``run_blocking(fn, *args)`` runs the engine's blocking step off the event loop (the bot's
``call_engine``). The first words are sent at once; later ones edit the message at most once per
``interval_s`` (1.2 s: Discord allows about 5 message writes per 5 s per channel, and discord.py
waits on the ``X-RateLimit-*`` headers itself, so the stream never meets a 429). Text past 2,000
characters continues in a further message, split at a paragraph boundary (``render.split_message``,
the same split as finished answers). When the answer is done its final text is put in place and the
last message gets the sources embed and the feedback buttons. If the model fails, the error text
replaces what was shown (continuations removed) and is returned, as ``DocRagClient._produce`` does.
An answer that is ready at once is simply sent.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import discord

from adapters.discord.feedback import feedback_view
from adapters.discord.render import error_text, sources_embed, split_message
from core.answers.edit_buffer import EditBuffer
from core.types import Answer

log = logging.getLogger(__name__)

INTERVAL_S = 1.2
Send = Callable[..., Awaitable[discord.Message]]
RunBlocking = Callable[..., Awaitable[Any]]


class DiscordStreamer:
    def __init__(self, send: Send, *, intro: str = "", interval_s: float = INTERVAL_S, **send_options: Any) -> None:
        self.send = send
        self.intro = intro
        self.send_options = send_options  # e.g. allowed_mentions for a recovered question
        self.messages: list[discord.Message] = []
        self.shown: list[str] = []  # what each message says now
        self.calls = 0  # Discord API calls made for this answer
        self._due: str | None = None
        self.buffer = EditBuffer(self._mark_due, interval_s=interval_s)

    async def deliver(self, stream: Generator[str, None, Answer], run_blocking: RunBlocking) -> Answer | str:
        try:
            while True:
                done, value = await run_blocking(_step, stream)
                if done:
                    answer: Answer = value
                    break
                self.buffer.add(value)
                await self._show_due()
        except Exception as exc:  # what the bot tells the user instead, as for an answer not streamed
            log.warning("discord.stream.failed error=%s", exc)
            text = error_text(exc)
            await self._show([self._with_intro(text)])
            return text
        await self.finish(answer)
        return answer

    async def finish(self, answer: Answer) -> None:
        extras: dict[str, Any] = {}
        embed = sources_embed(answer.citations, answer.grounded)
        if embed:
            extras["embed"] = embed
        if answer.message_id is not None:
            extras["view"] = feedback_view(answer.message_id)
        await self._show(split_message(self._with_intro(answer.text)), last_extras=extras)

    # -- internals -----------------------------------------------------------------------------
    def _mark_due(self, _new: str, full: str) -> None:
        self._due = full

    async def _show_due(self) -> None:
        if self._due is not None:
            due, self._due = self._due, None
            await self._show(split_message(self._with_intro(due)))

    async def _show(self, contents: list[str], *, last_extras: dict[str, Any] | None = None) -> None:
        """Make the messages say ``contents``: edit what changed, send what is new, delete the
        surplus; ``last_extras`` (embed, view) go on the last message."""
        for index, content in enumerate(contents):
            extras = last_extras if last_extras and index == len(contents) - 1 else {}
            if index < len(self.messages):
                if content != self.shown[index] or extras:
                    await self._write(self.messages[index].edit, index, content, **extras)
            else:
                message = await self._write(self.send, index, content, **extras, **self.send_options)
                if message is None:
                    return  # cannot send here: nothing after it can be shown either
        for message in self.messages[len(contents):]:
            await self._write(message.delete, -1, "")
        del self.messages[len(contents):], self.shown[len(contents):]

    async def _write(self, call: Callable[..., Awaitable[Any]], index: int, content: str, **kwargs: Any) -> Any:
        self.calls += 1
        try:
            result = await (call() if index < 0 else call(content=content, **kwargs))
        except discord.HTTPException as exc:  # the next edit carries the whole text again
            log.error("discord.stream.write_failed status=%s code=%s", exc.status, exc.code)
            return None
        if index >= len(self.messages):
            self.messages.append(result)
            self.shown.append(content)
        elif index >= 0:
            self.shown[index] = content
        return result

    def _with_intro(self, text: str) -> str:
        return f"{self.intro}\n\n{text}" if self.intro else text


def _step(stream: Generator[str, None, Answer]) -> tuple[bool, Any]:
    """One blocking step of the engine's stream (run in a worker thread): (False, piece) or (True, answer)."""
    try:
        return False, next(stream)
    except StopIteration as done:
        return True, done.value
