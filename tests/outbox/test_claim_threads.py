"""Message workers that start together never claim a message before its rule's earlier actions.

An engine's three message workers make their first claim at the same moment. The claim's condition
once read the earlier rows through one ORM ``aliased()`` shared by all threads, whose columns SQLAlchemy
adapts lazily: a thread could be handed the unaliased column, and ``earlier.seq < outbox.seq``
compiled as ``outbox.seq < outbox.seq`` (never true) for the life of that engine. The PostgreSQL kill
loop then sent an SMS without its invoice number about once in fifteen runs; a process of sixteen
threads claiming at once, with the interpreter switching threads as often as it can, hit it about
once in five. Each attempt here is such a fresh process (the condition is built once per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import select

from storage.models import OutboxAction
from tests.support.engine_world import COUNTERPARTY, GOOD_PHONE, ROOT
from tests.support.sessions import db_session

PROCESSES = 24
THREADS = 16

CLAIM_AT_ONCE = """
import json, sys, threading
from datetime import datetime
sys.setswitchinterval(1e-6)  # hand the interpreter to another thread as often as it can
from storage import repositories as repo
from storage.db import make_engine, session_factory, transaction

url, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
factory = session_factory(make_engine(url))
start = threading.Barrier(THREADS)
claimed, errors = [], []

def claim():
    try:
        with transaction(factory) as s:
            start.wait()
            claimed.extend(row.id for row in repo.claim_ready(s, now, 10, kind="message"))
            s.rollback()
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=claim) for _ in range(THREADS)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"claimed": claimed, "errors": errors}))
""".replace("THREADS", str(THREADS))


def test_threads_claiming_at_once_leave_an_sms_whose_invoice_is_not_generated(
    conveyor, backend: str
) -> None:
    c = conveyor
    deal = c.create_deal(
        "techflow",
        title="Acme",
        stage="contract",
        fields={"phone": GOOD_PHONE, "amount": 250, **COUNTERPARTY},
    )
    with db_session(c) as s:
        rows = {
            r.action: r.id
            for r in s.scalars(select(OutboxAction).where(OutboxAction.deal_id == deal))
        }
    assert set(rows) == {"generate_invoice", "send_sms"}  # both pending: the invoice comes first
    now = (c.clock.now() + timedelta(days=1)).isoformat()
    early = []
    for _ in range(PROCESSES):
        out = subprocess.run(
            [sys.executable, "-c", CLAIM_AT_ONCE, backend, now],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        answer = json.loads(out.stdout.splitlines()[-1])
        assert not answer["errors"], answer["errors"]
        early += [i for i in answer["claimed"] if i == rows["send_sms"]]
    assert not early, f"the SMS was claimed {len(early)} time(s) before its invoice was generated"
