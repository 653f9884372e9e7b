"""A process of concurrent writers for the group-commit crash test.

``python -m tests.support.group_writer URL CHANGES``: one thread per deal of the database (ids in
order), each renaming its deal ``w<thread>-<n>`` for n = 0, 1, ... (the first change also answers
"need: no", which fires ``qualification_no``), and printing ``ack <thread> <n>`` once the call has
returned, i.e. once the change is acknowledged.
"""

from __future__ import annotations

import sys
import threading

from sqlalchemy import select

from engine.core.conveyor import Conveyor
from storage.db import read_transaction
from storage.models import Deal


def main(url: str, changes: int) -> None:
    c = Conveyor(url, migrate=False)
    with read_transaction(c.engine) as s:
        deals = list(s.scalars(select(Deal.id).order_by(Deal.id)))
    out = threading.Lock()
    start = threading.Barrier(len(deals))

    def write(t: int, deal: int) -> None:
        start.wait()
        for n in range(changes):
            fields = {"title": f"w{t}-{n}", **({"need": "no"} if n == 0 else {})}
            c.update_deal(deal, fields)
            with out:
                sys.stdout.write(f"ack {t} {n}\n")
                sys.stdout.flush()

    threads = [threading.Thread(target=write, args=(t, d)) for t, d in enumerate(deals)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
