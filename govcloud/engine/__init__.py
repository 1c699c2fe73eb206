"""One cycle of work on tickets: submit → approve → apply (provision) → retire, with the audit.

``govcloud`` commands and the daemon call the same functions here; the CLI only parses and prints.
Collaborators (store, desired state, driver factory, clock, progress callback) come in through
``EngineContext`` so tests build fresh ones.
"""
