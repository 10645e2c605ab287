"""Docker's command semantics, env merging and restart decisions, without I/O."""

from __future__ import annotations

import pytest

from agent import launch
from agent.images.models import ImageConfig
from agent.restart import MAX_DELAY, decide
from skiff.models.appspec import ServiceSpec

IMAGE = ImageConfig(env=("PATH=/bin", "A=image"), cmd=("serve", "--port", "80"),
                    entrypoint=("/entry",), working_dir="/srv", user="app")


@pytest.mark.parametrize("entrypoint, command, expected", [
    (None, None, ["/entry", "serve", "--port", "80"]),       # the image's own
    (None, ["run", "x"], ["/entry", "run", "x"]),             # command replaces CMD
    (["/other"], None, ["/other"]),                          # entrypoint drops CMD
    (["/other"], ["a"], ["/other", "a"]),
    ([], ["sh"], ["sh"]),                                     # empty entrypoint clears it
])
def test_command_follows_docker(entrypoint, command, expected):
    spec = ServiceSpec(image="x", entrypoint=entrypoint, command=command)
    assert launch.command(spec, IMAGE) == expected


def test_no_command_at_all_is_an_error():
    with pytest.raises(launch.LaunchError, match="no command"):
        launch.command(ServiceSpec(image="x"), ImageConfig())


def test_environment_layers():
    env = launch.environment(ServiceSpec(image="x", environment={"A": "svc", "B": "1"}),
                             IMAGE, "web-1")
    assert env == {"PATH": "/bin", "HOSTNAME": "web-1", "A": "svc", "B": "1"}


@pytest.mark.parametrize("policy, retries, code, restarts, restart", [
    (None, None, 0, 0, True),            # unset: always, like Swarm's default
    ("always", None, 0, 50, True),
    ("unless-stopped", None, 1, 3, True),
    ("no", None, 1, 0, False),
    ("on-failure", None, 0, 0, False),
    ("on-failure", None, 2, 100, True),
    ("on-failure", 3, 2, 2, True),
    ("on-failure", 3, 2, 3, False),
])
def test_restart_policy(policy, retries, code, restarts, restart):
    spec = ServiceSpec(image="x", restart=policy, restart_max_retries=retries)
    assert decide(spec, code, restarts, quick_failures=1).restart is restart


def test_back_off_doubles_and_is_capped():
    spec = ServiceSpec(image="x")
    delays = [decide(spec, 1, n, quick_failures=n).delay for n in range(1, 10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == MAX_DELAY
