"""POD test fixtures: ``rtsp_camera`` and ``agent_factory`` (agents closed after the test).

The agent, its config and stream tokens live in ``tests/support`` (agent.py, builders.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import Agent
from tests.support.camera import rtsp_camera  # noqa: F401  (fixture re-export)


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[Any]:
    agents: list[Agent] = []

    def start(config: dict[str, Any], env: dict[str, str] | None = None) -> Agent:
        agent = Agent(tmp_path, config, env)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()
