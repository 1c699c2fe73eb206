"""The only code that talks to the outside world: openstack.py (openstacksdk), terraform/ (the
terraform CLI) and ansible.py. ``base`` holds the protocols and plain data every driver speaks; drivers never
import each other, and every outside failure leaves them as ``TemporaryError`` or ``PermanentError``.
"""
