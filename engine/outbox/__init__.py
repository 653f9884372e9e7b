"""The outbox: the dispatcher that carries out recorded actions, their effects and the providers.

    dispatcher   claims ready rows, applies internal actions, sends messages, retries, ``retry``
    outcomes     how an attempt ends: the retry policy, done/failed/dead, ``Executed``
    addressing   a message's channel and recipient, an e-mail's subject, a gateway's delivery word
    channels     the provider of each channel, configured once in conveyor.toml
    effects/     one module per internal action, registered in ``effects.EFFECTS``
    providers/   one module per message channel behind ``providers.MessageProvider``
    errors       ``ActionFailed``

It depends on the core's public services (``engine.core``), never the other way round.
"""

from __future__ import annotations

from engine.outbox.dispatcher import (
    Dispatcher,
    Executed,
    RetryPolicy,
    dispatch_internal,
    dispatch_messages,
    retry,
    run_until_idle,
)
from engine.outbox.errors import ActionFailed

__all__ = [
    "ActionFailed",
    "Dispatcher",
    "Executed",
    "RetryPolicy",
    "dispatch_internal",
    "dispatch_messages",
    "retry",
    "run_until_idle",
]
