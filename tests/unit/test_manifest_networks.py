"""Networking rules a manifest must meet on its own (docs/networking.md): one service per
DNS name and per published port, subnets that split across nodes and do not overlap,
and published ports that something can reach. Each problem says where."""

from __future__ import annotations

import pytest

from skiff.manifest import ManifestError, Problem, load_document, load_text


def problems(text: str) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        load_text(text, "app.yml", None, environ={})
    return info.value.problems


def where(p: Problem) -> str:
    return f"{p.line}:{p.column} {p.path}"


def test_an_alias_that_is_another_services_name_on_the_network() -> None:
    found = problems("""name: a
services:
  web:
    image: x
    networks:
      back: {aliases: [cache, db]}
  db:
    image: x
    networks: [back]
networks:
  back:
""")
    assert len(found) == 1, found
    assert where(found[0]) == "6:31 services.web.networks.back.aliases[1]"
    assert 'alias "db" of service "web" is the name of service "db"' in found[0].message


def test_an_alias_naming_a_service_on_another_network_is_fine() -> None:
    app = load_text("""name: a
services:
  web:
    image: x
    networks: {back: {aliases: [db, web]}}
  db:
    image: x
    networks: [front]
networks: {back: null, front: null}
""", "app.yml", None, environ={}).app
    assert app.services["web"].networks["back"].aliases == ["db", "web"]


def test_one_alias_claimed_by_two_services_on_one_network() -> None:
    found = problems("""name: a
services:
  one:
    image: x
    networks: {back: {aliases: [api]}}
  two:
    image: x
    networks: {back: {aliases: [api]}, front: {aliases: [api]}}
networks: {back: null, front: null}
""")
    assert len(found) == 1, found  # on front, "api" is only two's
    assert where(found[0]) == "8:33 services.two.networks.back.aliases[0]"
    assert 'alias "api" is claimed by services "one" and "two" on network "back"' \
        in found[0].message


def test_a_published_port_of_two_services_names_both() -> None:
    found = problems("""name: a
services:
  web: {image: x, ports: ['80:80', '8000-8002:9000-9002']}
  api:
    image: x
    ports:
      - '81:80'
      - {target: 1, published: 8001}
      - '8001:9/udp'
""")
    assert len(found) == 1, found
    assert where(found[0]) == "8:9 services.api.ports[1]"
    assert 'port 8001/tcp is published by both services "web" and "api"' in found[0].message


def test_the_same_port_number_on_tcp_and_udp_is_two_ports() -> None:
    load_text("name: a\nservices:\n  dns: {image: x, ports: ['53:53/udp']}\n"
              "  web: {image: x, ports: ['53:53']}\n", "app.yml", None, environ={})


@pytest.mark.parametrize("subnet, message", [
    ("10.0.0.0/25", "subnet 10.0.0.0/25 is too small to split across nodes (at most /24, "
                    "e.g. 10.0.0.0/24)"),
    ("10.0.0.4/30", "too small to split across nodes"),
    ("fd00::/64", "subnet fd00::/64 is IPv6; skiff networks are IPv4 only"),
])
def test_subnets_that_cannot_be_split_across_nodes(subnet: str, message: str) -> None:
    found = problems(f"""name: a
services:
  web: {{image: x}}
networks:
  back:
    ipam:
      config: [{{subnet: '{subnet}'}}]
""")
    assert [where(p) for p in found] == ["7:25 networks.back.ipam.config[0].subnet"]
    assert message in found[0].message


def test_a_slash_24_and_larger_subnets_are_fine() -> None:
    app = load_text("""name: a
services:
  web: {image: x}
networks:
  a: {ipam: {config: [{subnet: 10.1.0.0/24}]}}
  b: {ipam: {config: [{subnet: 10.2.0.0/16}]}}
""", "app.yml", None, environ={}).app
    assert app.networks["b"].ipam is not None


def test_overlapping_subnets_of_two_networks_name_both() -> None:
    found = problems("""name: a
services:
  web: {image: x}
networks:
  wide: {ipam: {config: [{subnet: 10.1.0.0/16}]}}
  narrow: {ipam: {config: [{subnet: 10.1.4.0/24}]}}
""")
    assert [where(p) for p in found] == ["6:37 networks.narrow.ipam.config[0].subnet"]
    assert ('subnet 10.1.4.0/24 of network "narrow" overlaps subnet 10.1.0.0/16 of '
            'network "wide"') in found[0].message


def test_an_external_networks_subnet_is_not_ours_to_check() -> None:
    load_text("""name: a
services:
  web: {image: x, networks: [shared]}
networks:
  shared: {external: true, ipam: {config: [{subnet: 10.0.0.0/28}]}}
""", "app.yml", None, environ={})


def test_ports_published_only_on_internal_networks() -> None:
    found = problems("""name: a
services:
  web: {image: x, ports: ['80:80'], networks: [inside]}
  both: {image: x, ports: ['81:80'], networks: [inside, default]}
  quiet: {image: x, ports: ['80'], networks: [inside]}
networks:
  inside: {internal: true}
""")
    assert [where(p) for p in found] == ["3:26 services.web.ports"]
    assert 'service "web" publishes ports but is only on internal networks ("inside")' \
        in found[0].message


def test_a_network_name_that_could_not_be_a_cluster_name() -> None:
    found = problems("name: a\nservices:\n  web: {image: x}\n"
                     "networks:\n  back: {name: 'a/b'}\n")
    assert [where(p) for p in found] == ["5:16 networks.back.name"]
    assert 'network name "a/b" must be letters' in found[0].message


def test_every_problem_is_reported_in_one_run() -> None:
    found = problems("""name: a
services:
  web: {image: x, ports: ['80:80'], networks: {i: {aliases: [db]}}}
  db: {image: x, ports: ['80:81'], networks: [i]}
networks:
  i: {internal: true, ipam: {config: [{subnet: 10.0.0.0/29}]}}
""")
    paths = sorted(p.path for p in found)
    assert paths == ["networks.i.ipam.config[0].subnet", "services.db.ports",
                     "services.db.ports[0]", "services.web.networks.i.aliases[0]",
                     "services.web.ports"], found


def test_the_server_sees_the_same_problems_without_positions() -> None:
    doc = {"name": "a", "services": {"web": {"image": "x", "ports": ["80:80"]},
                                     "api": {"image": "x", "ports": [{"target": 80,
                                                                      "published": 80}]}}}
    with pytest.raises(ManifestError) as info:
        load_document(doc, source="<api>")
    assert [p.path for p in info.value.problems] == ["services.api.ports[0]"]
    assert info.value.problems[0].line is None


# Malformed port ranges: the short syntax's (index 0 of the service's ports, at line 5).
BAD_RANGES = [
    ("'8000-'", '"8000-" is not a port mapping: container port "8000-" is not a port or '
                "a range like 8000-8010"),
    ("'-80'", 'container port "-80" is not a port or a range'),
    ("'8000--8002:80'", 'published port "8000--8002" is not a port or a range'),
    ("'a-b:80'", 'published port "a-b" is not a port or a range'),
    ("'8000-8010:9000'", "published and container port ranges differ in length"),
    ("'8000-8002:9002-9000'", 'container port range "9002-9000" runs backwards'),
    ("'1-65536'", "container port 65536 is outside 1-65535"),
    ("'0-10:0-10'", "container port 0 is outside 1-65535"),
    ("'8000-8002:9000-9002/sctp'", 'protocol "sctp" must be tcp or udp'),
    ("'1000-2000:1000-2000'", "is over 1000 ports"),
    ("{target: 80, published: '8000-8002'}", "published: a range (\"8000-8002\") needs as "
                                             "many targets"),
]


@pytest.mark.parametrize("entry, fragment", BAD_RANGES)
def test_malformed_port_ranges(entry: str, fragment: str) -> None:
    found = problems(f"name: a\nservices:\n  web:\n    image: x\n    ports: [{entry}]\n")
    assert [where(p) for p in found] == ["5:13 services.web.ports[0]"]
    assert fragment in found[0].message


def test_a_good_range_expands_to_one_mapping_per_port() -> None:
    app = load_text("name: a\nservices:\n  web: {image: x, ports: ['8000-8002:9000-9002']}\n",
                    "app.yml", None, environ={}).app
    assert [(p.published, p.target) for p in app.services["web"].ports] == [
        (8000, 9000), (8001, 9001), (8002, 9002)]


def test_a_dual_stack_ipam_keeps_its_ipv4_subnet() -> None:
    app = load_text("""name: a
services:
  web: {image: x}
networks:
  back:
    ipam:
      config: [{subnet: 10.3.0.0/16}, {subnet: 'fd00::/64'}]
""", "app.yml", None, environ={}).app
    assert app.networks["back"].ipam is not None
    assert app.networks["back"].ipam.config[0].subnet == "10.3.0.0/16"
