"""Every word the console shows is there in both languages: each key its templates and code name as written,
and each key of the families the templates build from a value (an instruction's kind and status, a case's
outcome). A missing key would show as itself, in neither language."""

from __future__ import annotations

import re
from pathlib import Path

from services.blocklist.models import STATUSES as BLOCKLIST_STATUSES
from services.console import i18n
from services.coordination.cases.models import CASE_STATUSES
from services.coordination.cases.schemas import OUTCOMES
from services.coordination.instructions.states import STATUSES
from streams.schemas.instructions import KINDS

CONSOLE = Path(i18n.__file__).parent
NAMED = re.compile(r"""\bt\(\s*['"]([a-z0-9_.]+)['"]\s*\)""")  # t('key') in a template, t("key") in code


def _named_keys() -> set[str]:
    keys: set[str] = set()
    for path in (*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")):
        keys |= set(NAMED.findall(path.read_text(encoding="utf-8")))
    return keys


def test_every_key_the_console_names_is_there_in_both_languages():
    named = _named_keys()
    assert len(named) > 150  # (the pattern finds the templates' keys: they name some 160)
    built = (
        {f"kind_{k}" for k in KINDS} | {f"status_{s}" for s in STATUSES} | {f"outcome_{o}" for o in OUTCOMES}
    )
    assert sorted((named | built) - i18n.MESSAGES.keys()) == []
    assert [
        k for k, words in i18n.MESSAGES.items() if len(words) != 2 or not all(w.strip() for w in words)
    ] == []


SERVICES = CONSOLE.parent
# The actions recorded under a case (the timeline lists a case's entries): of cases, instructions and money
# by name, and the blocklist's, which it names `blocklist.<action>`. (Alerts', warnings', desks' and
# institutions' are recorded without a case.)
RECORDED = re.compile(r""""((?:case|instruction|money)\.[a-z_]+)\"""")
BLOCKLIST_ACTION = re.compile(r"""\baction\s*=\s*(.*)""")  # action="proposed", action = "a" if … else "b"


def test_every_action_and_status_a_case_timeline_shows_has_words():
    """The timeline shows each audit entry of a case by its action and the status it left; one without
    words showed raw (`blocklist.proposed`, `→ status_active`)."""
    recorded: set[str] = set()
    for path in SERVICES.glob("*/**/*.py"):
        if path.parent.name != "migrations" and "console" not in path.parts:
            recorded |= set(RECORDED.findall(path.read_text(encoding="utf-8")))
    blocklist = (SERVICES / "blocklist" / "service.py").read_text(encoding="utf-8")
    for said in BLOCKLIST_ACTION.findall(blocklist):
        recorded |= {f"blocklist.{a}" for a in re.findall(r'"([a-z_]+)"', said)}
    assert {
        "blocklist.proposed",
        "blocklist.appeal_dismissed",
        "instruction.escalated",
        "money.stop_drafted",
    } <= (recorded)
    statuses = {*STATUSES, *BLOCKLIST_STATUSES, *CASE_STATUSES}
    missing = [f"act_{a}" for a in recorded if f"act_{a}" not in i18n.MESSAGES]
    missing += [f"status_{s}" for s in statuses if f"status_{s}" not in i18n.MESSAGES]
    assert sorted(missing) == []
