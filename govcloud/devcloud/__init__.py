"""The devcloud: a real OpenStack 2026.2 on 127.0.0.1 that govcloud brings up by itself.

One keystone; region ``gd-gz`` (centres/AZs ``gz-main`` and ``gz-backup``) and region ``gd-sg``
(``sg-dr``), each with its own nova, placement, glance and neutron; PostgreSQL and RabbitMQ; nova's
fake driver made restartable, neutron ML2 with a bind-all driver. Imported only by
``govcloud.cli.devcloud_cmd``.

::

    profile.py    inventory/devcloud.yaml → frozen dataclasses (the only YAML read here)
    layout.py     the state directory, generated secrets
    render.py     configuration files (pure)
    services.py   the table of processes (pure)
    procs.py      start detached / stop by process group / ports / readiness
    pg.py         the private PostgreSQL
    install.py    Debian packages, the services' venv, the shims
    lifecycle.py  up, down, status, reset, fail-centre, restore-centre
    data/         shims, paste files and the scripts run inside the services' venv
"""
