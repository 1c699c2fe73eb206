#!/bin/sh
# Ansible dynamic inventory backed by govcloud's state: `ansible-inventory -i inventory/govcloud.sh --graph`.
# Honours GOVCLOUD_DB / GOVCLOUD_USER like every govcloud command. It acts as GOVCLOUD_USER (set it in the
# environment Ansible runs in): an operator, approver or admin gets every host; a requester only its own
# tenants' hosts (`--host` of any other answers {}, as for an unknown host); without a user it exits 2.
exec govcloud inventory "$@"
