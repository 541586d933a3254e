"""Hooks for what others know: numbers and accounts confirmed as fraud (the blocklist service feeds
`services.scorer.blocklist`). The scorer asks through this protocol, so it runs without one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.scorer.blocklist import Blocklist


class FraudKnowledge(Protocol):
    def is_blocked_number(self, number: str) -> bool: ...

    def is_known_mule(self, institution: str, account: str) -> bool: ...


class BlocklistKnowledge:
    """Numbers and mule accounts from the published blocklist (`services.scorer.blocklist`)."""

    def __init__(self, blocklist: Blocklist) -> None:
        self.blocklist = blocklist

    def is_blocked_number(self, number: str) -> bool:
        return self.blocklist.blocks(number)

    def is_known_mule(self, institution: str, account: str) -> bool:
        return self.blocklist.lists_account(institution, account)


class NothingKnown:
    """The default: no blocklist wired in; the model and the other rules still decide."""

    def is_blocked_number(self, number: str) -> bool:
        return False

    def is_known_mule(self, institution: str, account: str) -> bool:
        return False
