"""The README stays true to the code: every setting the services read is documented there."""

from pathlib import Path

from deploy.settings_table import env_names, settings_classes

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme():
    missing = [v for cls, _ in settings_classes() for v, _, _ in env_names(cls) if f"`{v}`" not in README]
    assert missing == [], f"document these in README.md (python -m deploy.settings_table): {missing}"


def test_the_two_commands_are_documented():
    assert "make run" in README and "make test" in README
