"""govcloud's known_hosts: keys pinned per address, forgotten only when the VM at the address was replaced."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from govcloud.drivers.ansible import _failure_text
from govcloud.drivers.known_hosts import KnownHosts

KEY_A, KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAaaaa", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbbbb"


def learned(known: KnownHosts, lines: str) -> None:
    """What ssh's accept-new appends on first contact."""
    with known.path.open("a", encoding="utf-8") as handle:
        handle.write(lines)


def test_first_owners_are_recorded_and_nothing_is_forgotten(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "ssh" / "known_hosts")
    assert known.prepare({"10.0.0.5": "srv-1", "10.0.0.6": "srv-2"}) == []
    assert json.loads(known.owners_path.read_text()) == {"10.0.0.5": "srv-1", "10.0.0.6": "srv-2"}
    assert stat.S_IMODE(known.owners_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(known.path.parent.stat().st_mode) == 0o700


def test_a_replaced_vm_loses_the_old_key_and_the_others_keep_theirs(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    known.prepare({"10.0.0.5": "srv-1", "10.0.0.6": "srv-2", "10.0.0.7": "srv-3"})
    learned(known, f"10.0.0.5 {KEY_A}\n10.0.0.6 {KEY_B}\n[10.0.0.7]:2222 {KEY_A}\n10.0.0.5 ecdsa-sha2-nistp256 AAAAE2\n")
    assert known.prepare({"10.0.0.5": "srv-1", "10.0.0.6": "srv-2"}) == []               # same VMs: keys stay pinned
    assert known.prepare({"10.0.0.5": "srv-9", "10.0.0.7": "srv-8"}) == ["10.0.0.5", "10.0.0.7"]  # recreated at the same addresses
    assert known.keys() == {"10.0.0.6": [KEY_B]}
    assert json.loads(known.owners_path.read_text())["10.0.0.5"] == "srv-9"
    assert stat.S_IMODE(known.path.stat().st_mode) == 0o600


def test_a_key_written_by_hand_is_kept_and_adopted(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "known_hosts")
    learned(known, f"# pinned by the operator\n10.0.0.5 {KEY_A}\n")
    assert known.prepare({"10.0.0.5": "srv-1"}) == []
    assert known.keys() == {"10.0.0.5": [KEY_A]}
    assert known.prepare({"10.0.0.5": "srv-2"}) == ["10.0.0.5"]
    assert known.path.read_text() == "# pinned by the operator\n"


def test_a_refused_changed_key_is_said_in_words_with_the_way_out(tmp_path: Path) -> None:
    ssh_says = ("Failed to connect to the host via ssh: @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
                "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n...Host key verification failed.")
    event = {"event": "runner_on_unreachable", "event_data": {"task": "Gathering Facts", "host": "web-1", "remote_addr": "web-1",
                                                               "res": {"msg": ssh_says}}}
    text = _failure_text(event, tmp_path / "known_hosts", {"web-1": "10.0.0.5"})
    assert text is not None and text.startswith("Gathering Facts: SSH host key of 10.0.0.5 changed since govcloud first connected")
    assert f"ssh-keygen -R 10.0.0.5 -f {tmp_path / 'known_hosts'}" in text
    other = {"event": "runner_on_unreachable", "event_data": {"task": "t", "res": {"msg": "Connection timed out during banner exchange"}}}
    assert _failure_text(other, tmp_path / "known_hosts") == "t: Connection timed out during banner exchange"
