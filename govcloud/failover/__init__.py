"""The centres of the two-sites-three-centres layout: their health now (``health``, ``watch``), and
failover between them (recovery plans as data, steps, journal) next.

Beside the engine, not under it: failover and the engine never import each other; the daemon
wires both to the same store and drivers.
"""
