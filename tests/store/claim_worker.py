"""A claim worker in its own process, for tests/store/test_claim.py.

Usage: python -m tests.store.claim_worker URL NAME GO_FILE NOW_ISO. Prints "ready", waits for GO_FILE to exist
(so all workers start together), claims in small batches until nothing is due, then prints the ids as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from accesspoint.store.database import claim_outbound, make_engine, session_factory


def main(url: str, name: str, go_file: str, now_iso: str) -> None:
    engine = make_engine(url)
    sessions = session_factory(engine)
    now = datetime.fromisoformat(now_iso)
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal within 60 s")
        time.sleep(0.005)
    claimed: list[str] = []
    while True:
        with sessions() as session:
            batch = claim_outbound(session, name, limit=5, now=now, lease=timedelta(minutes=5))
        if not batch:
            break
        claimed.extend(m.id for m in batch)
    engine.dispose()
    print(json.dumps(claimed), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
