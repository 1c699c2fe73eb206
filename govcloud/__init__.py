"""govcloud — the control plane of a "1+N+M" provincial government cloud.

The package is layered; imports run downward only (checked by import-linter, see ``.importlinter``)::

    cli/         click commands, output formatting, progress       (the only importer of click and rich)
    daemon.py    the long-running process: leader lease, timers, signals
    engine/ failover/   one observe → plan → apply → record cycle; centre failover
    planner/ drivers/ exporter/   pure planning; the outside world (openstack, terraform, ansible); metrics
    store/       SQLAlchemy persistence: tickets, quota ledger, runs, hash-chained audit log
    model/       typed desired state loaded from YAML with file/line/key for every error
    common/      plain helpers engine and failover share: retry with backoff and jitter, shared deadlines
    settings.py errors.py files.py   process settings, the exception tree, private files (0600/0700)

``devcloud/`` sits beside the layers: the embedded loopback OpenStack, used by the CLI only.
"""

__version__ = "0.1.0"
