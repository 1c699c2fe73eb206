"""Who may do what. Management and operation are separate (the province's rule):

=========  =========================================================
requester  submit tickets for its own tenants; see only those tickets
approver   approve / reject; see every ticket
operator   plan, apply, retire, onboard tenants; see every ticket
admin      everything
=========  =========================================================
"""

from __future__ import annotations

from govcloud.errors import PermissionDenied
from govcloud.model.users import SYSTEM_ACTOR, User, Users

ACTIONS: dict[str, tuple[str, ...]] = {
    "submit": ("requester", "admin"),
    "approve": ("approver", "admin"),
    "reject": ("approver", "admin"),
    "plan": ("operator", "approver", "admin"),
    "apply": ("operator", "admin"),
    "retire": ("operator", "admin"),
    "onboard": ("operator", "admin"),
    "failover": ("operator", "admin"),
    "replicate": ("operator", "admin"),
    "dr-activate": ("operator", "admin"),
    "dr-approve": ("approver", "admin"),
    "drill": ("operator", "admin"),
    "dr-return": ("operator", "admin"),
    "view-all": ("approver", "operator", "admin"),
    "report-sample": ("operator", "admin"),
    "daemon": ("operator",),
    "db-upgrade": ("admin",),
}

SYSTEM = User(id=SYSTEM_ACTOR, name="govcloud", role="admin")
"""The actor govcloud records for its own rule-based decisions (auto-approval). It is a name in the
audit trail, never a user: ``acting_user`` refuses it, and users.yaml may not define it."""


def acting_user(users: Users, user_id: str) -> User:
    """The user named by ``--as`` / ``GOVCLOUD_USER``; a clear error when missing or unknown."""
    if not user_id:
        raise PermissionDenied("no acting user: pass --as USER or set GOVCLOUD_USER (users are listed in users.yaml)")
    if user_id == SYSTEM.id:
        raise PermissionDenied(f"'{SYSTEM.id}' is the name govcloud records for its own automatic decisions; nobody can act as it "
                               "(the daemon acts as its service identity, see docs/daemon.md)")
    user = users.get(user_id)
    if user is None:
        raise PermissionDenied(f"unknown user '{user_id}': not in users.yaml")
    return user


def require(user: User, action: str, *, tenant: str | None = None) -> None:
    """Raise PermissionDenied naming the user, role and action when not allowed."""
    allowed = ACTIONS[action]
    if user.role not in allowed:
        raise PermissionDenied(f"user '{user.id}' ({user.name}) has role {user.role}; '{action}' needs role "
                               + " or ".join(allowed))
    if tenant is not None and user.role == "requester" and tenant not in user.tenants:
        raise PermissionDenied(f"user '{user.id}' ({user.name}) is a requester for {', '.join(user.tenants)}, "
                               f"not for tenant '{tenant}'")


def service_identity(users: Users, user_id: str) -> User:
    """The user the daemon acts as: a users.yaml entry with the operator role and no other. The daemon
    submits nothing of its own, but it applies, corrects drift, retires expired leases and may evacuate
    a centre; a requester, approver or admin identity would mix management with operation (and an
    admin one could approve), so anything else is refused before the daemon does any work."""
    if not user_id:
        raise PermissionDenied("the daemon needs its service identity: set GOVCLOUD_DAEMON_USER (default govcloud-daemon) "
                               "to a users.yaml user with role operator")
    user = acting_user(users, user_id)
    require(user, "daemon")
    return user


def visible_tenants(user: User) -> tuple[str, ...] | None:
    """Tenants whose tickets the user may see; None means all."""
    return None if user.role in ACTIONS["view-all"] else user.tenants


def require_visible(user: User, tenant: str) -> None:
    """Raise PermissionDenied when the user may not see ``tenant``'s data (a requester, another tenant)."""
    tenants = visible_tenants(user)
    if tenants is not None and tenant not in tenants:
        raise PermissionDenied(f"user '{user.id}' ({user.name}) is a requester for {', '.join(tenants)}, "
                               f"not for tenant '{tenant}'")
