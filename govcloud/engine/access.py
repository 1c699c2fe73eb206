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
from govcloud.model.users import User, Users

ACTIONS: dict[str, tuple[str, ...]] = {
    "submit": ("requester", "admin"),
    "approve": ("approver", "admin"),
    "reject": ("approver", "admin"),
    "plan": ("operator", "approver", "admin"),
    "apply": ("operator", "admin"),
    "retire": ("operator", "admin"),
    "onboard": ("operator", "admin"),
    "failover": ("operator", "admin"),
    "view-all": ("approver", "operator", "admin"),
}

SYSTEM = User(id="system", name="govcloud", role="admin")
"""The daemon and auto-approval act as this user."""


def acting_user(users: Users, user_id: str) -> User:
    """The user named by ``--as`` / ``GOVCLOUD_USER``; a clear error when missing or unknown."""
    if not user_id:
        raise PermissionDenied("no acting user: pass --as USER or set GOVCLOUD_USER (users are listed in users.yaml)")
    if user_id == SYSTEM.id:
        return SYSTEM
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


def visible_tenants(user: User) -> tuple[str, ...] | None:
    """Tenants whose tickets the user may see; None means all."""
    return None if user.role in ACTIONS["view-all"] else user.tenants


def require_visible(user: User, tenant: str) -> None:
    """Raise PermissionDenied when the user may not see ``tenant``'s data (a requester, another tenant)."""
    tenants = visible_tenants(user)
    if tenants is not None and tenant not in tenants:
        raise PermissionDenied(f"user '{user.id}' ({user.name}) is a requester for {', '.join(tenants)}, "
                               f"not for tenant '{tenant}'")
