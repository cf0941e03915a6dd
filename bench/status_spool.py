"""What /healthz costs while a long outage is being spooled: ``spool_depth`` counts the
batches of a spool file (one JSON line each) on every request, without parsing them.

Writes a spool of real ledger-record batches (the shape ``Spool.append`` writes) of the
given size in a temporary directory, then times ``spool_depth`` on it: counting the whole
file, counting only what one more batch appended (what /healthz does from the second request
on), and, for comparison, reading every batch with ``Spool.batches`` (JSON-parsed).

    .venv/bin/python bench/status_spool.py              # 100 MB spool, 5 rounds
    .venv/bin/python bench/status_spool.py --mb 20 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from service.status import spool_depth
from service.store.spool import Spool

# One batch as the writer spools it: a few call records (the fields of a ledger row).
BATCH = [{"kind": "call", "pbx_id": "tokyo-1", "linkedid": f"1796100000.{n}",
          "direction": "inbound", "client": "KSL", "did": "0312345678",
          "caller_number": "09011112222", "caller_name": "田中太郎", "outcome": "answered",
          "wait_s": 3.5, "talk_s": 40.0, "answered_by": "201"} for n in range(8)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "tokyo-1.spool")
        path = spool.path
        spool.append(BATCH)
        one = path.stat().st_size
        with path.open("ab") as out:  # the same bytes append() writes, without an fsync each
            chunk = path.read_bytes()
            for _ in range(args.mb * 1024 * 1024 // one):
                out.write(chunk)
        counted = spool_depth(path)
        print(f"spool: {counted.lines:,} batches, {counted.size / 1e6:.1f} MB")
        counted, parsed, appended = [], [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            known = spool_depth(path)
            counted.append(time.perf_counter() - start)
            spool.append(BATCH)  # what the writer adds between two /healthz requests
            start = time.perf_counter()
            spool_depth(path, known)
            appended.append(time.perf_counter() - start)
            start = time.perf_counter()
            sum(1 for _ in spool.batches())
            parsed.append(time.perf_counter() - start)
        print(f"spool_depth (lines counted): median {statistics.median(counted) * 1000:.0f} ms "
              f"over {args.rounds} rounds")
        print(f"spool_depth after one more batch, from the last count (what /healthz does): "
              f"median {statistics.median(appended) * 1e6:.0f} us")
        print(f"Spool.batches (JSON parsed): median {statistics.median(parsed) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
