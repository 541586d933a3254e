"""The README and docs/ stay true to the code and to any checkout: the settings table is exactly what
the code declares, no page carries a path of the machine it was written on, and the example of posting a
batch gets, run as printed, the answer it shows."""

import asyncio
import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from deploy import settings_table
from streams import topics
from tests import factories as f
from tests.fuzz.services import services

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The pages that show an institution posting a batch, and the address their example posts to.
POSTING_PAGES = [ROOT / "README.md", ROOT / "docs" / "integration.md"]
EXAMPLE_URL = "http://127.0.0.1:8001/v1/events"


def test_the_settings_page_is_exactly_the_generated_table():
    text = settings_table.SETTINGS_DOC.read_text()
    found = settings_table.MARKERS.search(text)
    assert found is not None, "docs/settings.md lost its settings markers"
    assert found.group(0) == settings_table.block(), "regenerate: python -m deploy.settings_table --write"


def test_the_table_is_the_same_whatever_the_environment(monkeypatch):
    """Regenerated with other ports and another database set, the page would not change."""
    monkeypatch.setenv("STOPLINE_KAFKA_PORT", "1")
    monkeypatch.setenv("STOPLINE_PG_PORT", "2")
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    test_the_settings_page_is_exactly_the_generated_table()
    assert "`127.0.0.1:19092`" in settings_table.table()
    assert str(ROOT) not in settings_table.table()


def test_no_page_carries_a_path_of_this_machine():
    machine = re.compile(r"(?<![\w.])/(work|root|home|tmp|Users)/")
    for page in PAGES:
        text = page.read_text()
        assert str(ROOT) not in text, page
        assert not machine.search(text), f"{page.name}: {machine.search(text)}"


def test_every_link_between_pages_leads_somewhere():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#]+\.md)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to {target}"


def test_the_readme_stays_a_short_introduction():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert len(readme.splitlines()) <= 120
    assert "<!-- settings:start -->" not in readme


def test_every_command_a_page_gives_runs():
    """`python -m X` names a module that runs (a package needs its `__main__`), and the setup job's command
    carries the option it cannot run without."""
    for page in PAGES:
        text = page.read_text()
        for module in set(re.findall(r"python -m ([\w.]+)", text)):
            spec = importlib.util.find_spec(module)
            assert spec is not None, f"{page.name}: no module {module}"
            if spec.submodule_search_locations is not None:
                assert importlib.util.find_spec(f"{module}.__main__"), (
                    f"{page.name}: {module} has no __main__"
                )
        for command in re.findall(r"python -m streams\.acls services[^`\n]*", text):
            assert "--password-dir" in command, f"{page.name}: {command}"


def _is_topic(name: str) -> bool:
    """`name` is a topic of streams/topics.py, or a family's (`intake.<id>`, `instructions.bank-a`)."""
    families = {t.name.rstrip(".") for t in topics.institution_topics("")}
    head, _, tail = name.rpartition(".")
    if tail.startswith("<") and tail.endswith(">"):  # any of a family, or of the event topics
        return head in families or any(t.name.startswith(f"{head}.") for t in topics.ALL)
    return name in {t.name for t in topics.ALL} or (
        head in families and re.fullmatch(topics.INSTITUTION_ID, tail) is not None
    )


def test_every_topic_a_page_names_exists():
    """A name in backticks that is called a topic, or that starts as a dotted topic's name does (`events.`,
    `scorer.`, `intake.`, ...), is one that streams/topics.py makes."""
    heads = {t.name.split(".")[0] for t in (*topics.ALL, *topics.institution_topics("x")) if "." in t.name}
    called = r"topic `([^`]+)`|`([^`]+)` topic\b"
    for page in PAGES:
        text = page.read_text()
        named = {a or b for a, b in re.findall(called, text)}
        dotted = {n for n in re.findall(r"`([\w.<> -]+)`", text) if "." in n and n.split(".")[0] in heads}
        for name in named | {n for n in dotted if not re.search(r"\.(py|md|json|ya?ml)$", n)}:
            assert _is_topic(name), f"{page.name} names a topic `{name}`"


def test_the_needs_of_make_test_are_those_of_the_makefile():
    """What `make test` builds and installs before it runs (the Makefile's pins) is what a newcomer is told
    to have: a missing Go, or one older than helm's, stops it at its first step."""
    makefile = (ROOT / "Makefile").read_text()
    helm = re.search(r"^HELM_VERSION := (\S+)$", makefile, re.M)
    go = re.search(r"go\.mod asks for Go (\d+\.\d+)", makefile)
    browser = re.search(r"^BROWSER_PACKAGES := (.+)$", makefile, re.M)
    assert helm and go and browser, "the Makefile lost a pin this test reads"
    running = (
        (ROOT / "docs" / "operations.md").read_text().split("## Running it locally")[1].split("\n## ")[0]
    )
    for needed in (
        f"helm {helm[1]}",
        f"Go {go[1]}",
        "`prometheus`",
        "curl",
        *map("`{}`".format, browser[1].split()),
    ):
        assert needed in running, needed
    assert f"Go {go[1]}" in (ROOT / "README.md").read_text()


def _posting_example(page: Path) -> tuple[str, str]:
    """The page's shell example that posts a batch, and the answer it shows (its `# {...}` line)."""
    [block] = [b for b in re.findall(r"```sh\n(.*?)```", page.read_text(), re.S) if EXAMPLE_URL in b]
    [answer] = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# {")]
    return block, answer


@pytest.mark.integration
async def test_the_posting_example_gets_the_answer_it_shows(infra, sessions, tmp_path):
    """Run as printed, by bash and curl, against a real ingest process, whatever the day: an example dated
    once goes out of the history window a week later (422) and would teach a newcomer nothing. Its curl run
    again, as the comment says, is a retry: the event is a duplicate, not other content (409)."""
    with services(infra, tmp_path, names=("ingest",)) as up:
        for page in POSTING_PAGES:
            command, shown = _posting_example(page)
            command = command.replace(EXAMPLE_URL, f"{up.urls['ingest']}/v1/events")
            curl = command[command.index("curl ") :]
            _, headers = await f.institution(sessions, "bank")
            run = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                f"{command}\necho\n{curl}",
                env={**os.environ, "STOPLINE_KEY": headers["Authorization"].removeprefix("Bearer ")},
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await run.communicate()
            first, again = out.decode().split("\n")
            assert (run.returncode, first) == (0, shown), page.name
            assert json.loads(again)["accepted"] == 0 and len(json.loads(again)["duplicates"]) == 1, again
