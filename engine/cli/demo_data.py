"""Demo data: the sample funnels, three managers and a handful of TechFlow deals at various stages.

Deals are replayed under a virtual clock over the last few days, so reminders, cold calls and an
invoice have already happened when the owner first opens the builder.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from engine.clock import VirtualClock
from engine.core.conveyor import Conveyor
from engine.paths import SAMPLE_RULES

MANAGERS = [
    ("Olena Kovalenko", "+380501110001"),
    ("Petro Shevchenko", "+380501110002"),
    ("Iryna Bondarenko", "+380501110003"),
]


def load_demo(conveyor: Conveyor, rules_dir: Path = SAMPLE_RULES) -> str:
    """Load the sample funnel and demo deals unless the database already has them; say what was done."""
    has_funnels = bool(conveyor.funnels())
    has_deals = conveyor.queries.any_deals()
    done = []
    if not has_funnels:
        conveyor.load_rules_dir(rules_dir, comment="sample funnel", author="demo")
        done.append("loaded the sample funnels")
    if has_deals:
        return "; ".join(done) or "database already has demo data"
    real_now = conveyor.clock.now()
    clock = VirtualClock(real_now - timedelta(days=4))
    replay = Conveyor(conveyor.engine, clock=clock, migrate=False)
    for name, phone in MANAGERS:
        if not any(m.name == name for m in replay.deals.managers()):
            replay.add_manager(name, phone)

    def step(hours: float) -> None:
        clock.advance(timedelta(hours=hours))
        replay.tick()
        replay.dispatcher.run_until_idle()

    acme = replay.create_deal(
        "techflow",
        title="Acme Logistics",
        fields={"phone": "+380671234567", "amount": 120000, "source": "website"},
    )
    step(1)
    kyivstar = replay.create_deal(
        "techflow",
        title="Dnipro Steel",
        fields={"phone": "+380931112233", "amount": 480000, "source": "referral"},
    )
    step(2)
    replay.move_deal(acme, "qualification")
    replay.update_deal(acme, {"budget": "yes", "authority": "yes", "need": "yes"})
    step(3)
    replay.move_deal(acme, "proposal")
    replay.record_event(acme, "proposal_attached")
    step(5)
    replay.move_deal(kyivstar, "qualification")
    replay.update_deal(kyivstar, {"budget": "yes", "authority": "no"})
    step(6)
    lviv = replay.create_deal(
        "techflow",
        title="Lviv Coffee Roasters",
        fields={"phone": "+380661234000", "amount": 35000, "source": "cold outreach"},
    )
    step(12)
    replay.record_event(acme, "proposal_opened")
    step(20)
    odesa = replay.create_deal(
        "techflow",
        title="Odesa Port Services",
        fields={"phone": "+380501239876", "amount": 260000, "source": "exhibition"},
    )
    replay.move_deal(odesa, "qualification")
    replay.update_deal(odesa, {"budget": "yes", "authority": "yes", "need": "yes"})
    replay.move_deal(odesa, "proposal")
    replay.record_event(odesa, "proposal_attached")
    step(4)
    replay.update_deal(
        odesa,
        {
            "company_name": "ТОВ «Одеса Порт Сервіс»",
            "tax_id": "43219876",
            "billing_address": "Odesa, Morska St 1",
        },
    )
    replay.move_deal(odesa, "contract")
    step(10)
    replay.record_event(odesa, "payment_received", data={"amount": 260000})
    step(8)
    replay.create_deal(
        "techflow",
        title="Kharkiv IT Cluster",
        fields={"phone": "+380991230000", "amount": 90000, "source": "website"},
    )
    replay.record_activity(lviv, "call", "Asked to call back next week")
    while clock.now() + timedelta(hours=1) < real_now:
        step(1)
    clock.set(real_now)
    replay.tick()
    replay.dispatcher.run_until_idle()
    done.append("created 3 managers and 5 demo deals")
    return "; ".join(done)
