"""The API server's settings: flags > PQ_* variables > defaults, each bad value named."""

from __future__ import annotations

import pytest

from persistent_queue.api.settings import parse_args, settings_from_env
from persistent_queue.errors import InvalidArgument


def test_flags_win_over_the_environment_and_log_levels_take_any_case() -> None:
    env = {"PQ_DB": "env.db", "PQ_API_PORT": "9000", "PQ_LOG_LEVEL": "INFO",
           "PQ_API_TOKEN": "t", "PQ_DEFAULT_QUEUE": "inbox"}
    settings = parse_args(["--db", "flag.db"], env=env)
    assert (settings.db, settings.port, settings.log_level) == ("flag.db", 9000, "info")
    assert (settings.token, settings.default_queue, settings.host) == ("t", "inbox", "127.0.0.1")


@pytest.mark.parametrize("env, named", [
    ({"PQ_API_PORT": "eighty"}, "PQ_API_PORT"),
    ({"PQ_LOG_LEVEL": "verbose"}, "PQ_LOG_LEVEL"),
    ({"PQ_DURABILITY": "fast"}, "PQ_DURABILITY"),
    ({"PQ_API_READ_TOKEN": "r"}, "PQ_API_READ_TOKEN"),
    ({"PQ_DEFAULT_QUEUE": "no spaces"}, "PQ_DEFAULT_QUEUE"),
])
def test_a_bad_variable_is_named(env: dict[str, str], named: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidArgument, match=named):
        settings_from_env(env)
    with pytest.raises(SystemExit) as exited:
        parse_args([], prog="pq api", env=env)
    assert exited.value.code == 2
    assert "pq api: error: " in capsys.readouterr().err
