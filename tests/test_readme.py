"""The README and docs/ stay true to the code and to any checkout: the settings table is exactly what
the code declares, and no page carries a path of the machine it was written on."""

import re
from pathlib import Path

from deploy import settings_table

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


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
