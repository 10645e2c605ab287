"""The builder's pure parts: config changes of metadata instructions, cache keys, image
states and the final config JSON."""

from __future__ import annotations

import json

import pytest

from agent.build.cache import CacheEntry, instruction_key, step_key
from agent.build.metadata import apply_metadata, workdir_of
from agent.build.sources import resolve_dest
from agent.build.state import ImageState, LayerRef, image_config_json
from agent.images.models import Descriptor
from skiff.build import instructions as ins
from skiff.build.dockerfile import parse_dockerfile
from skiff.build.scope import global_scope, stage_scope, step


def expanded(text: str, env: dict[str, str] | None = None) -> ins.Instruction:
    dockerfile = parse_dockerfile(f"FROM scratch\n{text}\n")
    scope = stage_scope(global_scope(dockerfile), env or {})
    instruction = dockerfile.stages[0].instructions[0]
    out, _ = step(scope, instruction)
    return out


def apply(config: dict, text: str, cmd_set: bool = False) -> dict:
    env = dict(item.partition("=")[::2] for item in config.get("Env", []))
    return apply_metadata(dict(config), expanded(text, env), cmd_set)


def test_env_replaces_in_place_and_appends():
    config = apply({"Env": ["PATH=/bin", "A=1"]}, "ENV A=2 B=$A")
    assert config["Env"] == ["PATH=/bin", "A=2", "B=1"]  # $A: the env before the ENV


def test_labels_ports_volumes_accumulate():
    config = apply({"Labels": {"a": "1"}}, 'LABEL b="two words"')
    assert config["Labels"] == {"a": "1", "b": "two words"}
    config = apply({}, "EXPOSE 80 53/udp 8000-8002")
    assert sorted(config["ExposedPorts"]) == ["53/udp", "80/tcp", "8000/tcp", "8001/tcp",
                                              "8002/tcp"]
    config = apply({}, 'VOLUME ["/data", "/logs"]')
    assert config["Volumes"] == {"/data": {}, "/logs": {}}
    with pytest.raises(ValueError, match="range"):
        apply({}, "EXPOSE 1-5000")


def test_cmd_entrypoint_and_shell():
    config = apply({}, "CMD echo hi")
    assert config["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    config = apply({"Shell": ["/bin/ash", "-eo"]}, "CMD echo hi")
    assert config["Cmd"] == ["/bin/ash", "-eo", "echo hi"]
    # an inherited CMD is cleared by a new ENTRYPOINT; this stage's own CMD is kept
    assert apply({"Cmd": ["sh"]}, 'ENTRYPOINT ["app"]')["Cmd"] is None
    assert apply({"Cmd": ["sh"]}, 'ENTRYPOINT ["app"]', cmd_set=True)["Cmd"] == ["sh"]
    assert apply({}, 'SHELL ["/bin/bash", "-c"]')["Shell"] == ["/bin/bash", "-c"]


def test_user_workdir_stopsignal_healthcheck_onbuild():
    assert apply({}, "USER app:staff")["User"] == "app:staff"
    assert apply({"WorkingDir": "/srv"}, "WORKDIR app/../web")["WorkingDir"] == "/srv/web"
    assert apply({}, "WORKDIR /x/")["WorkingDir"] == "/x"
    assert workdir_of({}, "rel") == "/rel"
    assert apply({}, "STOPSIGNAL SIGINT")["StopSignal"] == "SIGINT"
    health = apply({}, "HEALTHCHECK --interval=5s --retries=2 CMD true")["Healthcheck"]
    assert health == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert apply({}, "HEALTHCHECK NONE")["Healthcheck"] == {"Test": ["NONE"]}
    assert apply({}, "ONBUILD RUN make")["OnBuild"] == ["RUN make"]


def test_instruction_key_ignores_line_and_spelling_of_variables():
    a = expanded("COPY $SRC /app/", {"SRC": "x"})
    b = parse_dockerfile("FROM scratch\n\n\nCOPY x /app/\n").stages[0].instructions[0]
    assert a.line != b.line
    assert instruction_key(a) == instruction_key(b)
    assert instruction_key(expanded("RUN make")) != instruction_key(expanded("RUN make all"))


def test_step_key_depends_on_parent_and_extra():
    run = expanded("RUN make")
    empty = ImageState()
    other = ImageState(config={"Env": ["A=1"]})
    assert step_key(empty, run) == step_key(ImageState(), run)
    assert step_key(empty, run) != step_key(other, run)
    assert step_key(empty, run, {"args": {"V": "1"}}) != step_key(empty, run,
                                                                   {"args": {"V": "2"}})


def test_state_and_cache_entry_round_trip():
    layer = LayerRef(Descriptor("application/vnd.oci.image.layer.v1.tar+gzip",
                                "sha256:" + "a" * 64, 10), "sha256:" + "b" * 64)
    entry = CacheEntry(layer, {"Env": ["A=1"]}, {"created": "t", "created_by": "RUN x"}, "t")
    again = CacheEntry.from_json(json.loads(json.dumps(entry.to_json())))
    assert again == entry
    state = again.apply(ImageState())
    assert state.diff_ids == [layer.diff_id] and state.created == "t"
    assert state.state_id() != ImageState().state_id()
    config = json.loads(image_config_json(state))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    assert config["history"] == [{"created": "t", "created_by": "RUN x"}]
    assert image_config_json(state) == image_config_json(again.apply(ImageState()))


def test_copy_destination_rules():
    assert resolve_dest(".", "/app") == "/app"
    assert resolve_dest("./", "/app") == "/app/"
    assert resolve_dest("conf/", "/app") == "/app/conf/"
    assert resolve_dest("/etc//x/../y", "/app") == "/etc/y"
    assert resolve_dest("/", "/app") == "/"
