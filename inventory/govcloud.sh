#!/bin/sh
# Ansible dynamic inventory backed by govcloud's state: `ansible-inventory -i inventory/govcloud.sh --graph`.
# Honours GOVCLOUD_DB / GOVCLOUD_USER like every govcloud command (the acting user must see the tickets).
exec govcloud inventory "$@"
