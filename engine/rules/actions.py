"""Rule actions: what a rule may do, declared with business-rules' ``rule_action``.

Calling an action on ``DealActions`` only *plans* it (appends to ``planned``): evaluation stays pure.
Planned actions go to the outbox in the same transaction as the change that caused them, and
``engine.outbox.dispatcher`` carries them out. Each param dict carries business-rules' keys (name, label,
fieldType) plus Conveyor's ``required`` and, for selects, ``options``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from business_rules.actions import BaseActions, rule_action
from business_rules.fields import FIELD_NUMERIC, FIELD_SELECT, FIELD_TEXT

from engine.i18n import N_

PRIORITIES = ["low", "normal", "high"]
CHANNELS = ["telegram", "viber", "whatsapp", "email"]

#: Actions that send something outside (at-least-once, through a provider); the rest are internal.
MESSAGE_ACTIONS = frozenset({"send_sms", "send_message", "send_email"})
#: Actions that give the deal's manager something to close (a task, a notification): those a stage's
#: rule creates close as cancelled when the deal leaves the stage, unless ``keep_after_stage_exit``.
TASK_ACTIONS = frozenset({"create_task", "notify_manager"})
#: Params that hold a safe template over deal fields.
TEMPLATE_PARAMS = {
    "create_task": ("title",),
    "notify_manager": ("text",),
    "send_sms": ("text",),
    "send_message": ("text",),
    "send_email": ("subject", "text"),
    "start_process": ("title",),
}


_Method = TypeVar("_Method", bound=Callable[..., None])


def action(label: str, params: list[dict[str, Any]]) -> Callable[[_Method], _Method]:
    """business-rules' ``rule_action`` (untyped), typed: it marks the method and returns it unchanged."""
    mark: Callable[[_Method], _Method] = rule_action(label=label, params=params)
    return mark


def _param(
    name: str, label: str, field_type: str, required: bool = True, **extra: Any
) -> dict[str, Any]:
    return {"name": name, "label": label, "fieldType": field_type, "required": required, **extra}


@dataclass
class PlannedAction:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


class DealActions(BaseActions):  # type: ignore[misc]  # business-rules ships no types
    """The built-in actions. Every method records the call; none has a side effect."""

    def __init__(self) -> None:
        self.planned: list[PlannedAction] = []

    def _plan(self, name: str, **params: Any) -> None:
        self.planned.append(PlannedAction(name, {k: v for k, v in params.items() if v is not None}))

    @action(label=N_("Assign a manager (round robin)"), params=[])
    def assign_manager(self) -> None:
        self._plan("assign_manager")

    @action(
        label=N_("Create a task"),
        params=[
            _param("title", N_("Title"), FIELD_TEXT),
            # One of the two: calendar hours, or working hours of the funnel's calendar.
            _param("due_in_hours", N_("Due in (hours)"), FIELD_NUMERIC, required=False),
            _param(
                "due_in_working_hours",
                N_("Due in (working hours)"),
                FIELD_NUMERIC,
                required=False,
            ),
            _param(
                "priority",
                N_("Priority"),
                FIELD_SELECT,
                required=False,
                options=PRIORITIES,
                default="normal",
            ),
        ],
    )
    def create_task(
        self,
        title: str,
        due_in_hours: float | None = None,
        priority: str = "normal",
        due_in_working_hours: float | None = None,
    ) -> None:
        self._plan(
            "create_task",
            title=title,
            due_in_hours=due_in_hours,
            due_in_working_hours=due_in_working_hours,
            priority=priority,
        )

    @action(
        label=N_("Notify the manager"),
        params=[
            _param("text", N_("Text"), FIELD_TEXT),
            _param(
                "priority",
                N_("Priority"),
                FIELD_SELECT,
                required=False,
                options=PRIORITIES,
                default="normal",
            ),
            # At most one of the two (none: at once): calendar hours, or working hours of the calendar.
            _param("delay_hours", N_("Delay (hours)"), FIELD_NUMERIC, required=False),
            _param(
                "due_in_working_hours",
                N_("Delay (working hours)"),
                FIELD_NUMERIC,
                required=False,
            ),
        ],
    )
    def notify_manager(
        self,
        text: str,
        priority: str = "normal",
        delay_hours: float | None = None,
        due_in_working_hours: float | None = None,
    ) -> None:
        self._plan(
            "notify_manager",
            text=text,
            priority=priority,
            delay_hours=delay_hours,
            due_in_working_hours=due_in_working_hours,
        )

    @action(
        label=N_("Move to stage"),
        params=[_param("to_stage", N_("Stage"), FIELD_SELECT, options=[])],
    )
    def move_to_stage(self, to_stage: str) -> None:
        self._plan("move_to_stage", to_stage=to_stage)

    @action(label=N_("Send the client an SMS"), params=[_param("text", N_("Text"), FIELD_TEXT)])
    def send_sms(self, text: str) -> None:
        self._plan("send_sms", text=text)

    @action(
        label=N_("Send the client a message"),
        params=[
            _param("channel", N_("Channel"), FIELD_SELECT, options=CHANNELS),
            _param("text", N_("Text"), FIELD_TEXT),
        ],
    )
    def send_message(self, channel: str, text: str) -> None:
        self._plan("send_message", channel=channel, text=text)

    @action(
        label=N_("Send the client an e-mail"),
        params=[
            _param("subject", N_("Subject"), FIELD_TEXT),
            _param("text", N_("Text"), FIELD_TEXT),
            _param("to", N_("To (empty: the deal's e-mail)"), FIELD_TEXT, required=False),
        ],
    )
    def send_email(self, subject: str, text: str, to: str | None = None) -> None:
        self._plan("send_email", subject=subject, text=text, to=to)

    @action(
        label=N_("Generate an invoice"),
        params=[
            _param("amount", N_("Amount (empty: the deal's amount)"), FIELD_NUMERIC, required=False)
        ],
    )
    def generate_invoice(self, amount: float | None = None) -> None:
        self._plan("generate_invoice", amount=amount)

    @action(
        label=N_("Start a process (linked deal in another funnel)"),
        params=[
            _param("funnel", N_("Funnel"), FIELD_SELECT, options=[]),
            _param("title", N_("Title of the new deal"), FIELD_TEXT, required=False),
        ],
    )
    def start_process(self, funnel: str, title: str | None = None) -> None:
        self._plan("start_process", funnel=funnel, title=title)
