"""The README and .env.example name what the code has: the routing
server's variables, and the demo day's options."""

import re
from pathlib import Path

import pytest

from shipments.management.commands.simulate_deliveries import Command

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", ["ETA_ROUTER_URL", "ETA_ROUTER_KIND", "ETA_ROUTER_TIMEOUT_S"])
def test_the_router_variables_are_documented(name):
    assert re.search(rf"^{name}=", (ROOT / ".env.example").read_text(), re.M)
    configuration = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert f"`{name}`" in configuration


def test_the_demo_days_options_in_the_readme_are_the_commands():
    parser = Command().create_parser("manage.py", "simulate_deliveries")
    options = {o for action in parser._actions for o in action.option_strings}
    demo = README.split("simulate_deliveries", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`(--[a-z-]+)", demo))
    assert {"--interval", "--rounds"} <= named
    assert named <= options
    assert "real time" in demo and "--interval 0" in demo
