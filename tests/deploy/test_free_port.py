"""Ports chosen for servers that bind later: clear of the ports outgoing connections take."""

from __future__ import annotations

import random
import socket

import pytest

from deploy.local import common


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_a_chosen_port_is_free_and_below_the_ephemeral_range() -> None:
    low, high = common.ephemeral_ports()
    ports = {common.free_port() for _ in range(20)}
    assert all(p in common.CHOSEN_PORTS and not low <= p <= high for p in ports)
    assert all(_bindable(p) for p in ports)


def test_a_port_taken_is_not_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    first = common.free_port()
    monkeypatch.setattr(common, "_HANDED_OUT", set())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        monkeypatch.setattr(common, "CHOSEN_PORTS", range(first, first + 2))
        assert common.free_port() == first + 1


def test_a_port_is_never_handed_out_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault suite chooses a whole fleet's ports before any binds: the same draw twice gave two
    instances one port (ci-DF: coordination-1 and scorer-accounts-2 on 23017)."""
    again = common.free_port()
    monkeypatch.setattr(random, "choice", lambda _: again)  # the draw repeats itself
    others = {common.free_port() for _ in range(5)}
    assert again not in others and len(others) == 5 and all(_bindable(p) for p in others)


def test_without_room_below_the_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "ephemeral_ports", lambda: (1024, 65535))
    port = common.free_port()
    assert port not in common.CHOSEN_PORTS and _bindable(port)
