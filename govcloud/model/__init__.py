"""Typed desired state: topology (clouds, centres), tenants, quotas and tickets.

``loading`` is the only YAML reader and knows the file, line and key of everything it reads;
``schema`` turns plain data into the frozen dataclasses of ``topology``, ``tenants``, ``quotas`` and
``tickets``; ``validate*`` cross-check the files against each other; ``state.load_state`` does all
of it and raises one ``ConfigError`` listing every problem.
"""
