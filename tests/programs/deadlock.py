"""Two threads in a real RLock deadlock (each holds the lock the other
wants, taken with `with`), a third waiting for one of those locks, and a
fourth waiting on an Event. Prints the threads' native ids and "ready",
then serves reports until killed.

    python tests/programs/deadlock.py --config-file service.conf
"""

import sys
import threading

from oslo_config import cfg

import gmr
from gmr import opts as gmr_opts

accounts = threading.RLock()
ledger = threading.RLock()
# The two transfers, each holding its first lock, and main.
both_held = threading.Barrier(3)
stop = threading.Event()


def transfer(first: threading.RLock, second: threading.RLock) -> None:
    with first:
        both_held.wait()
        with second:
            pass


def audit() -> None:
    with accounts:
        pass


def main() -> None:
    gmr_opts.set_defaults(cfg.CONF)
    cfg.CONF(sys.argv[1:], project="deadlock")
    gmr.TextGuruMeditation.setup_autorun("1.0", conf=cfg.CONF, service_name="deadlock")
    threads = [threading.Thread(target=transfer, args=(accounts, ledger), name="transfer-1",
                                daemon=True),
               threading.Thread(target=transfer, args=(ledger, accounts), name="transfer-2",
                                daemon=True)]
    for thread in threads:
        thread.start()
    both_held.wait()  # each transfer holds its first lock now
    threads.append(threading.Thread(target=audit, name="audit", daemon=True))
    threads.append(threading.Thread(target=stop.wait, name="idle", daemon=True))
    for thread in threads[2:]:
        thread.start()
    print("threads", *[thread.native_id for thread in threads], flush=True)
    print("ready", flush=True)
    stop.wait()


if __name__ == "__main__":
    main()
