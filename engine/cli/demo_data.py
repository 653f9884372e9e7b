"""Demo data: the sample funnels, demo users (an owner, three managers, a viewer) and a handful of
TechFlow deals at various stages.

The demo users' passwords are written here and printed by ``conveyor demo``: they are not secrets, and
only fit a throwaway demo database on this machine. Real users are added with ``conveyor users add``.

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
#: (name, role, password, phone) of the demo's users. NOT secrets: for the throwaway demo database only.
DEMO_USERS = [
    ("owner", "owner", "demo-owner", ""),
    *((name, "manager", f"demo-{name.split()[0].lower()}", phone) for name, phone in MANAGERS),
    ("viewer", "viewer", "demo-viewer", ""),
]


def demo_users_text() -> str:
    """What ``conveyor demo`` prints: the demo users, their roles and passwords."""
    lines = [
        "demo users (sign in to the builder with one; these passwords are NOT secret and are only"
        " for this throwaway demo database):"
    ]
    lines += [
        f"  {name:<18} {role:<8} password: {password}" for name, role, password, _ in DEMO_USERS
    ]
    return "\n".join(lines)


def ensure_demo_users(conveyor: Conveyor) -> bool:
    """Add the demo users the database lacks (a manager takes over the managers row of that name)."""
    from engine.errors import NotFound

    added = False
    for name, role, password, phone in DEMO_USERS:
        try:
            conveyor.users.get(name)
        except NotFound:
            conveyor.users.add(name, role, password, phone=phone, actor="demo")
            added = True
    return added


def load_demo(conveyor: Conveyor, rules_dir: Path = SAMPLE_RULES) -> str:
    """Load the sample funnel and demo deals unless the database already has them; say what was done."""
    has_funnels = bool(conveyor.funnels())
    has_deals = conveyor.queries.any_deals()
    done = []
    if not has_funnels:
        conveyor.load_rules_dir(rules_dir, comment="sample funnel", author="demo")
        done.append("loaded the sample funnels")
    if ensure_demo_users(conveyor):
        done.append("added the demo users")
    if has_deals:
        return "; ".join(done) or "database already has demo data"
    real_now = conveyor.clock.now()
    clock = VirtualClock(real_now - timedelta(days=4))
    replay = Conveyor(conveyor.engine, clock=clock, migrate=False)

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
    done.append("created 5 demo deals")
    return "; ".join(done)
