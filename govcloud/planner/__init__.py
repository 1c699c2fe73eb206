"""Pure planning: placement of a ticket's VMs across clouds and centres, and the quota check.

No I/O and no clock: everything comes in as arguments (the desired state, a usage snapshot taken
from the ledger by the caller) and goes out as frozen data (``Plan``), so `govcloud plan`, the
approval transaction and the daemon compute exactly the same thing, and tests need no fakes.
"""
