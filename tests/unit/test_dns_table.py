"""The DNS name table: who sees which names, with which addresses (no I/O)."""

from __future__ import annotations

from agent.dns.table import QTYPE_A, QTYPE_ANY, Answer, NameTable, RoundRobin
from skiff.models.objects import EndpointAddress, Endpoints, ObjectMeta

AAAA = 28
MX = 15


def addr(task: str, ready: bool = True, hostname: str = "", **nets: str) -> EndpointAddress:
    return EndpointAddress(task=task, node="n1", vtep="192.0.2.1", hostname=hostname or task,
                           ready=ready, addresses=dict(nets))


def endpoints(app: str, name: str, names: dict[str, list[str]],
              *addresses: EndpointAddress) -> Endpoints:
    return Endpoints(metadata=ObjectMeta(name=name, app=app), names=names,
                     addresses=list(addresses))


# Two networks: front (10.1.x) and back (10.2.x). web is on both, db only on back,
# cache only on front; a client container "probe" is on front only.
WEB = endpoints("shop", "web", {"front": ["web", "www"], "back": ["web", "api"]},
                addr("web.1", front="10.1.0.11", back="10.2.0.11"),
                addr("web.2", front="10.1.0.12", back="10.2.0.12"),
                addr("web.3", ready=False, front="10.1.0.13", back="10.2.0.13"))
DB = endpoints("shop", "db", {"back": ["db", "postgres"]},
               addr("db.1", hostname="pg1", back="10.2.0.21"))
CACHE = endpoints("shop", "cache", {"front": ["cache"]},
                  addr("cache.1", front="10.1.0.31"))
PROBE = endpoints("shop", "probe", {"front": ["probe"]},
                  addr("probe.1", hostname="prober", front="10.1.0.41"))


def table(*eps: Endpoints) -> NameTable:
    return NameTable.from_endpoints(eps or (WEB, DB, CACHE, PROBE))


def records(answer: Answer) -> set[str]:
    assert answer.kind == "records", answer
    return set(answer.addresses)


def test_service_name_answers_ready_replicas_on_the_clients_network():
    t = table()
    assert records(t.lookup("10.1.0.41", "web", QTYPE_A)) == {"10.1.0.11", "10.1.0.12"}
    # From back (db's address), the same name gives the back addresses.
    assert records(t.lookup("10.2.0.21", "web", QTYPE_A)) == {"10.2.0.11", "10.2.0.12"}


def test_aliases_are_per_network():
    t = table()
    assert records(t.lookup("10.1.0.41", "www", QTYPE_A)) == {"10.1.0.11", "10.1.0.12"}
    assert t.lookup("10.1.0.41", "api", QTYPE_A).kind == "nxdomain"  # api is back's alias
    assert records(t.lookup("10.2.0.21", "api", QTYPE_A)) == {"10.2.0.11", "10.2.0.12"}


def test_tasks_name_gives_all_ready_replicas_for_names_and_aliases():
    t = table()
    assert records(t.lookup("10.1.0.41", "tasks.web", QTYPE_A)) == {"10.1.0.11", "10.1.0.12"}
    assert records(t.lookup("10.1.0.41", "tasks.www", QTYPE_A)) == {"10.1.0.11", "10.1.0.12"}
    assert records(t.lookup("10.2.0.21", "tasks.postgres", QTYPE_A)) == {"10.2.0.21"}


def test_a_service_on_several_networks_answers_on_the_shared_ones():
    # A client on both networks (web.1 itself) sees web's addresses on both.
    t = table()
    assert records(t.lookup("10.1.0.11", "web", QTYPE_A)) == {
        "10.1.0.11", "10.1.0.12", "10.2.0.11", "10.2.0.12"}
    # And it is the same client whichever of its addresses it asks from.
    assert records(t.lookup("10.2.0.11", "db", QTYPE_A)) == {"10.2.0.21"}
    assert records(t.lookup("10.1.0.11", "db", QTYPE_A)) == {"10.2.0.21"}


def test_names_of_other_networks_are_nxdomain_and_unknown_names_forwarded():
    t = table()
    assert t.lookup("10.1.0.41", "db", QTYPE_A) == Answer("nxdomain")
    assert t.lookup("10.1.0.41", "tasks.db", QTYPE_A) == Answer("nxdomain")
    assert t.lookup("10.1.0.41", "pg1", QTYPE_A) == Answer("nxdomain")
    assert t.lookup("10.1.0.41", "example.com", QTYPE_A) == Answer("forward")
    assert t.lookup("10.1.0.41", "tasks.nothing", QTYPE_A) == Answer("forward")
    # Search-domain forms are not ours (documented: exact names only).
    assert t.lookup("10.1.0.41", "web.example.com", QTYPE_A) == Answer("forward")


def test_unknown_clients_are_refused():
    t = table()
    assert t.lookup("10.1.0.99", "web", QTYPE_A) == Answer("refused")
    assert t.lookup("10.1.0.99", "example.com", QTYPE_A) == Answer("refused")


def test_names_are_case_insensitive_and_the_final_dot_optional():
    t = table(endpoints("a", "Web", {"front": ["Web", "WWW."]},
                        addr("w1", front="10.1.0.11")))
    for name in ("web", "WEB.", "Web", "www", "wWw.", "TASKS.web.", "tasks.WWW"):
        assert records(t.lookup("10.1.0.11", name, QTYPE_A)) == {"10.1.0.11"}, name


def test_other_types_of_known_names_get_nodata():
    t = table()
    assert t.lookup("10.1.0.41", "web", AAAA) == Answer("nodata")
    assert t.lookup("10.1.0.41", "tasks.web", MX) == Answer("nodata")
    assert t.lookup("10.1.0.41", "prober", AAAA) == Answer("nodata")
    assert t.lookup("10.1.0.41", "db", AAAA) == Answer("nxdomain")  # not the client's network
    assert records(t.lookup("10.1.0.41", "web", QTYPE_ANY)) == {"10.1.0.11", "10.1.0.12"}


def test_a_service_with_no_ready_replica_is_nodata_not_forwarded():
    t = table(endpoints("a", "slow", {"front": ["slow"]}, addr("s1", ready=False,
                                                                front="10.1.0.51")),
              PROBE)
    assert t.lookup("10.1.0.41", "slow", QTYPE_A) == Answer("nodata")
    assert t.lookup("10.1.0.41", "tasks.slow", QTYPE_A) == Answer("nodata")
    empty = table(endpoints("a", "none", {"front": ["none"]}), PROBE)
    assert empty.lookup("10.1.0.41", "none", QTYPE_A) == Answer("nodata")


def test_starting_containers_are_known_clients_and_resolve_themselves():
    t = table()
    # web.3 is not ready: it is not in web's answers, but it may already ask.
    assert records(t.lookup("10.1.0.13", "cache", QTYPE_A)) == {"10.1.0.31"}
    assert t.lookup("10.1.0.13", "web.3", QTYPE_A) == Answer("records",
                                                             ("10.2.0.13", "10.1.0.13"))
    # Others do not get a not-ready container's address.
    assert t.lookup("10.1.0.41", "web.3", QTYPE_A) == Answer("nodata")


def test_hostnames_own_and_others_on_shared_networks():
    t = table()
    assert t.lookup("10.1.0.41", "prober", QTYPE_A) == Answer("records", ("10.1.0.41",))
    assert records(t.lookup("10.1.0.41", "web.1", QTYPE_A)) == {"10.1.0.11"}
    assert records(t.lookup("10.2.0.21", "web.1", QTYPE_A)) == {"10.2.0.11"}
    assert t.lookup("10.1.0.41", "pg1", QTYPE_A).kind == "nxdomain"


def test_own_hostname_lists_eth0_first_and_is_not_rotated():
    t = table()
    for _ in range(3):
        assert t.lookup("10.2.0.11", "web.1", QTYPE_A) == Answer(
            "records", ("10.2.0.11", "10.1.0.11"))  # networks sorted: back is eth0


def test_a_service_name_wins_over_a_hostname():
    t = table(endpoints("a", "web", {"front": ["web"]}, addr("w1", front="10.1.0.11")),
              endpoints("a", "other", {"front": ["other"]},
                        addr("o1", hostname="web", front="10.1.0.21")))
    assert records(t.lookup("10.1.0.21", "web", QTYPE_A)) == {"10.1.0.11"}
    # Even for the container whose hostname it is.
    assert records(t.lookup("10.1.0.21", "web", QTYPE_A)) == {"10.1.0.11"}


def test_equal_aliases_of_two_services_add_up():
    t = table(endpoints("a", "s1", {"front": ["s1", "shared"]}, addr("a1", front="10.1.0.1")),
              endpoints("a", "s2", {"front": ["s2", "shared"]}, addr("b1", front="10.1.0.2")))
    assert records(t.lookup("10.1.0.1", "shared", QTYPE_A)) == {"10.1.0.1", "10.1.0.2"}


def test_answers_rotate_across_queries():
    t = table(endpoints("a", "s", {"front": ["s"]},
                        *(addr(f"s{i}", front=f"10.1.0.{i}") for i in range(1, 4))))
    seen = [t.lookup("10.1.0.1", "s", QTYPE_A).addresses for _ in range(4)]
    assert seen[0] == ("10.1.0.1", "10.1.0.2", "10.1.0.3")
    assert seen[1] == ("10.1.0.2", "10.1.0.3", "10.1.0.1")
    assert seen[2] == ("10.1.0.3", "10.1.0.1", "10.1.0.2")
    assert seen[3] == seen[0]


def test_rotation_carries_over_a_table_swap_when_shared():
    rr = RoundRobin()
    ep = endpoints("a", "s", {"front": ["s"]},
                   *(addr(f"s{i}", front=f"10.1.0.{i}") for i in range(1, 3)))
    first = table(ep).lookup("10.1.0.1", "s", QTYPE_A, rr).addresses
    second = table(ep).lookup("10.1.0.1", "s", QTYPE_A, rr).addresses
    assert first != second
    rr.retain({"other"})
    assert table(ep).lookup("10.1.0.1", "s", QTYPE_A, rr).addresses == first


def test_a_reused_address_belongs_to_the_running_task():
    old = addr("s.1.old", ready=False, hostname="old", back="10.2.0.5")
    new = addr("s.1.new", hostname="new", front="10.1.0.5")
    t = table(endpoints("a", "s", {"front": ["s"], "back": ["s"]}, new, old), CACHE)
    client = t.client("10.1.0.5")
    assert client is not None and client.hostname == "new"
    assert records(t.lookup("10.1.0.5", "cache", QTYPE_A)) == {"10.1.0.31"}


def test_empty_table_refuses_everyone():
    assert NameTable.empty().lookup("10.1.0.1", "web", QTYPE_A) == Answer("refused")


def test_containers_only_on_internal_networks_get_no_forwarding():
    t = NameTable.from_endpoints((WEB, DB, CACHE, PROBE), internal={"back"})
    # db.1 is only on back (internal): the world is refused, its names still answer.
    assert t.lookup("10.2.0.21", "example.com", QTYPE_A) == Answer("refused")
    assert records(t.lookup("10.2.0.21", "web", QTYPE_A)) == {"10.2.0.11", "10.2.0.12"}
    assert t.lookup("10.2.0.21", "cache", QTYPE_A) == Answer("nxdomain")
    # web.1 is on front too: it may still reach the world.
    assert t.lookup("10.2.0.11", "example.com", QTYPE_A) == Answer("forward")
