"""The centres of the two-sites-three-centres layout: their health now (``health``, ``watch``), and
failover between them (``recover``: the plan from ``planner/failover.py``, carried out by forced
evacuation, recorded in the store and the audit chain), and planned migration and failback of a
healthy centre (``planned``: live migration, the failback plan from ``planner/failback.py``).

Beside the engine, not under it: failover and the engine never import each other; the daemon
wires both to the same store and drivers.
"""
