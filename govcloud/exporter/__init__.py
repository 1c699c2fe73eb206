"""Metrics computed from govcloud's own state store, never from a cloud API at scrape time.

    catalogue.py   every metric: name, type, labels, help (docs/monitoring.md lists the same)
    families.py    metric families as plain data
    metrics.py     one scrape: aggregate reads of the store (govcloud.store.aggregates), then pure building
    blocks.py      the per-tenant families built block by block, so that a change rebuilds one block
    collector.py   GovcloudCollector (prometheus_client custom collector, injected registry) and the
                   fast text exposition the server sends
    serve.py       MetricsServer (/metrics, /healthz, /readyz; 127.0.0.1 by default) and daemon_server

The only package that imports prometheus_client (import-linter checks it).
"""

from govcloud.exporter.collector import GovcloudCollector, exposition
from govcloud.exporter.serve import MetricsServer, daemon_server

__all__ = ["GovcloudCollector", "MetricsServer", "daemon_server", "exposition"]
