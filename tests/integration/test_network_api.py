"""The network API and the networking checks of apply, against a real controller and etcd:
clashes with what is stored are refused with a message naming both sides, and a refusal
writes nothing."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from skiff.client.api import ApiClient, ApiError
from skiff.models.appspec import Ipam, IpamConfig, NetworkSpec, PortMapping, ServiceSpec
from skiff.models.kinds import APP, NETWORK, SERVICE
from skiff.models.objects import ObjectMeta, Service
from tests.integration.conftest import RunningController, wait_for

pytestmark = pytest.mark.integration


def app_doc(name: str, services: dict[str, Any], networks: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "services": {
        svc: {"image": "busybox", **body} for svc, body in services.items()}}
    if networks:
        doc["networks"] = networks
    return doc


async def refused(api: ApiClient, doc: dict[str, Any], status: int, *fragments: str,
                  dry_run: bool = False) -> ApiError:
    with pytest.raises(ApiError) as info:
        await api.apply(doc, source="app.yml", dry_run=dry_run)
    err = info.value
    assert err.status == status, err.message
    for fragment in fragments:
        assert fragment in err.message, err.message
    # Nothing was written.
    with pytest.raises(ApiError) as gone:
        await api.get(APP, doc["name"])
    assert gone.value.status == 404
    return err


async def test_create_get_list_delete_a_standalone_network(controller: RunningController
                                                           ) -> None:
    async with controller.client() as api:
        made = await api.create_network({"name": "shared", "subnet": "10.61.0.9/24",
                                         "internal": True, "labels": {"team": "a"}})
        assert made["metadata"]["name"] == "shared" and made["metadata"].get("app") is None
        assert made["spec"]["ipam"]["config"][0]["subnet"] == "10.61.0.0/24"  # normalised
        assert made["spec"]["internal"] is True
        assert made["metadata"]["labels"] == {"team": "a"}
        got = await api.get(NETWORK, "shared")
        assert got["metadata"]["uid"] == made["metadata"]["uid"]
        listed = await api.list(NETWORK)
        assert [n["metadata"]["name"] for n in listed["items"]] == ["shared"]

        with pytest.raises(ApiError) as info:
            await api.create_network({"name": "shared"})
        assert (info.value.status, info.value.code) == (409, "AlreadyExists")
        assert "network shared already exists" in info.value.message

        # The object form works too; its spec name may be left out.
        full = await api.create_network({"kind": "Network", "metadata": {"name": "other"},
                                         "spec": {"attachable": True}})
        assert full["spec"]["name"] == "other" and full["spec"]["attachable"] is True

        await api.delete(NETWORK, "shared")
        with pytest.raises(ApiError) as info:
            await api.get(NETWORK, "shared")
        assert info.value.status == 404


@pytest.mark.parametrize("body, status, fragment", [
    ({"name": "a/b"}, 422, "network name 'a/b' must be letters"),
    ({"name": " x"}, 422, "must be letters"),
    ({"name": "x" * 129}, 422, "at most 128"),
    ({}, 422, "a network needs a name"),
    ({"name": "n", "subnet": "nope"}, 422, "'nope' is not a CIDR subnet"),
    ({"name": "n", "subnet": "10.0.0.0/25"}, 422, "too small to split across nodes"),
    ({"name": "n", "subnet": "fd00::/64"}, 422, "IPv4 only"),
    ({"name": "n", "subnet": 10}, 422, "subnet: must be a string"),
    ({"name": "n", "internal": "yes"}, 422, "internal: must be true or false"),
    ({"name": "n", "labels": {"a": 1}}, 422, "labels: must map strings to strings"),
    ({"name": "n", "driver": "macvlan"}, 422, "driver 'macvlan'"),
    ({"name": "n", "colour": "red"}, 400, "unknown keys colour"),
    ({"kind": "App", "metadata": {"name": "n"}}, 400, "only Network objects"),
    ({"metadata": {"name": "n", "app": "todo"}, "spec": {}}, 422,
     "networks of an app are made from its manifest"),
    ({"metadata": {"name": "n"}, "spec": {"external": True}}, 422, "not external"),
    ({"metadata": {"name": "n"}, "spec": {"name": "m"}}, 422, "must equal metadata.name"),
    ({"metadata": {"name": "n"}, "spec": {"internal": "x"}}, 422, "not a valid Network"),
    ({"metadata": 5}, 422, "not a valid Network"),
    ({"metadata": {"name": "n"}, "spec": "x"}, 422, "not a valid Network"),
    ({"metadata": {"name": "n"}, "spec": {"ipam": {"config": [{"gateway": "g"}]}}}, 422,
     "spec.ipam.config[0].gateway: 'g' is not an address"),
    ([1, 2], 400, "expected a Network object"),
])
async def test_bad_creates_are_refused_clearly(controller: RunningController, body: Any,
                                               status: int, fragment: str) -> None:
    async with controller.client() as api:
        with pytest.raises(ApiError) as info:
            await api.request("POST", "/api/v1/networks", body=body)
        assert info.value.status == status, info.value.message
        assert fragment in info.value.message
        assert (await api.list(NETWORK))["items"] == []


async def test_only_an_admin_may_create_networks(controller: RunningController) -> None:
    join = (controller.state_dir / "join.token").read_text().strip()
    async with controller.client(join) as joiner:
        with pytest.raises(ApiError) as info:
            await joiner.create_network({"name": "n"})
        assert info.value.status == 403
        with pytest.raises(ApiError) as info:
            await joiner.delete(NETWORK, "n")
        assert info.value.status == 403


async def test_subnets_may_not_overlap_across_apps_and_networks(controller: RunningController
                                                                ) -> None:
    async with controller.client() as api:
        await api.apply(app_doc("a", {"web": {"networks": ["back"]}},
                                {"back": {"ipam": {"config": [{"subnet": "10.50.0.0/16"}]}}}),
                        source="a.yml")
        err = await refused(api, app_doc("b", {"web": {"networks": ["back"]}}, {
            "back": {"ipam": {"config": [{"subnet": "10.50.7.0/24"}]}}}), 409,
            "networks.back.ipam.config[0].subnet: subnet 10.50.7.0/24 of network b_back "
            "overlaps network a_back (app a, 10.50.0.0/16)")
        assert err.code == "InUse"
        assert err.details["problems"][0]["path"] == "networks.back.ipam.config[0].subnet"

        # A standalone network's, and a standalone network against an app's.
        await api.create_network({"name": "shared", "subnet": "10.60.0.0/24"})
        await refused(api, app_doc("c", {"web": {"networks": ["x"]}}, {
            "x": {"ipam": {"config": [{"subnet": "10.60.0.0/20"}]}}}), 409,
            "overlaps network shared (standalone, 10.60.0.0/24)")
        with pytest.raises(ApiError) as info:
            await api.create_network({"name": "late", "subnet": "10.50.128.0/24"})
        assert info.value.status == 409
        assert "overlaps network a_back (app a, 10.50.0.0/16)" in info.value.message

        # What the controller allocated (Network.status), not only what was asked for.
        await api.apply(app_doc("z", {"web": {}}), source="z.yml")
        allocated = await wait_for(lambda: _allocated(api, "z_default"),
                                   "the controller to allocate z_default a subnet")
        inside = str(next(ipaddress.ip_network(allocated).subnets(new_prefix=24)))
        await refused(api, app_doc("d", {"web": {"networks": ["x"]}}, {
            "x": {"ipam": {"config": [{"subnet": inside}]}}}), 409,
            f"overlaps network z_default (app z, {allocated})")

        # An app may keep (or re-apply) its own subnet.
        again = await api.apply(app_doc("a", {"web": {"networks": ["back"]}, "db": {}}, {
            "back": {"ipam": {"config": [{"subnet": "10.50.0.0/16"}]}}}), source="a.yml")
        assert again["action"] == "configured"


async def _allocated(api: ApiClient, name: str) -> str | None:
    try:
        net = await api.get(NETWORK, name)
    except ApiError:
        return None
    return net["status"].get("subnet") or None


async def test_a_published_port_belongs_to_one_app(controller: RunningController) -> None:
    async with controller.client() as api:
        await api.apply(app_doc("a", {"web": {"ports": ["8080:80"]}}), source="a.yml")
        for dry_run in (True, False):
            await refused(api, app_doc("b", {"api": {"ports": ["9000:9000", "8080:80"]}}),
                          409, "services.api.ports[1]: port 8080/tcp of service b/api is "
                               "already published by service a/web", dry_run=dry_run)
        await api.apply(app_doc("b", {"api": {"ports": ["8080:80/udp", "8081:80"]}}),
                        source="b.yml")
        # A service left behind by a deleted app still holds its port until it is gone.
        await controller.store.create(Service(
            metadata=ObjectMeta(name="old", app="gone"),
            spec=ServiceSpec(image="x", ports=[PortMapping(target=1, published=7000)])))
        await refused(api, app_doc("c", {"web": {"ports": ["7000:80"]}}), 409,
                      "already published by service gone/old")


async def test_an_external_network_must_exist(controller: RunningController) -> None:
    async with controller.client() as api:
        doc = app_doc("a", {"web": {"networks": ["shared"]}},
                      {"shared": {"external": True}})
        err = await refused(api, doc, 422, "networks.shared: network shared declared as "
                                           "external, but could not be found")
        assert err.code == "Invalid"
        await api.create_network({"name": "shared"})
        assert (await api.apply(doc, source="a.yml"))["action"] == "created"

        # Another app's own network can be joined by its cluster name.
        await api.apply(app_doc("b", {"web": {"networks": ["back"]}}, {"back": None}),
                        source="b.yml")
        joined = await api.apply(app_doc("c", {"web": {"networks": ["theirs"]}},
                                         {"theirs": {"external": True, "name": "b_back"}}),
                                 source="c.yml")
        assert joined["action"] == "created"


async def test_an_app_may_not_declare_someone_elses_network_as_its_own(
        controller: RunningController) -> None:
    async with controller.client() as api:
        await api.create_network({"name": "shared"})
        await refused(api, app_doc("a", {"web": {"networks": ["x"]}}, {"x": {"name": "shared"}}),
                      409, "network shared is a standalone network; declare it with "
                           "external: true")


async def test_dns_names_on_a_shared_network_stay_unique(controller: RunningController
                                                         ) -> None:
    async with controller.client() as api:
        await api.create_network({"name": "shared"})
        ext = {"shared": {"external": True}}
        await api.apply(app_doc("a", {"db": {"networks": {"shared": {"aliases": ["sql"]}}}},
                                ext), source="a.yml")
        await refused(api, app_doc("b", {"web": {"networks": {"shared": {"aliases": ["db"]}}}},
                                   ext), 409,
                      'services.web.networks.shared.aliases[0]: alias "db" of service b/web on '
                      "network shared is already the service name of service a/db there")
        await refused(api, app_doc("b", {"web": {"networks": {"shared": {"aliases": ["sql"]}}}},
                                   ext), 409, "already the alias name of service a/db")
        await refused(api, app_doc("b", {"sql": {"networks": ["shared"]}}, ext), 409,
                      'service name "sql" is already an alias of service a/db on network shared')
        # Off the shared network, the same names are no one else's business.
        await api.apply(app_doc("b", {"db": {"networks": {"default": {"aliases": ["sql"]}}}}),
                        source="b.yml")


async def test_an_app_update_gets_the_same_checks(controller: RunningController) -> None:
    async with controller.client() as api:
        await api.apply(app_doc("a", {"web": {}}), source="a.yml")
        app = await api.get(APP, "a")
        rv = app["metadata"]["resourceVersion"]
        app["spec"]["networks"]["nope"] = {"name": "nope", "external": True}
        app["spec"]["services"]["web"]["networks"]["nope"] = {"aliases": []}
        with pytest.raises(ApiError) as info:
            await api.update(APP, app)
        assert info.value.status == 422
        assert "network nope declared as external, but could not be found" \
            in info.value.message
        assert (await api.get(APP, "a"))["metadata"]["resourceVersion"] == rv


async def test_deleting_a_network_in_use_or_owned_is_refused(controller: RunningController
                                                             ) -> None:
    async with controller.client() as api:
        await api.create_network({"name": "shared"})
        await api.apply(app_doc("a", {"web": {"networks": ["shared"]}, "db": {}},
                                {"shared": {"external": True}}), source="a.yml")
        with pytest.raises(ApiError) as info:
            await api.delete(NETWORK, "shared")
        assert (info.value.status, info.value.code) == (409, "InUse")
        assert "network shared is in use by 1 service(s): a/web" in info.value.message
        assert info.value.details["services"] == ["a/web"]

        # The app's own network, made by the controller from its manifest.
        await wait_for(lambda: _allocated(api, "a_default"), "network a_default")
        with pytest.raises(ApiError) as info:
            await api.delete(NETWORK, "a_default")
        assert (info.value.status, info.value.code) == (409, "OwnedByApp")
        assert "belongs to app a: delete the app" in info.value.message

        with pytest.raises(ApiError) as info:
            await api.delete(NETWORK, "nope")
        assert info.value.status == 404

        await api.delete(APP, "a")

        async def gone() -> bool:
            return not (await api.list(SERVICE, app="a"))["items"]
        await wait_for(gone, "app a's services to go")
        await api.delete(NETWORK, "shared")
        # The app's own network goes with it, once nothing is on it any more.

        async def only(names: list[str]) -> bool:
            return [n["metadata"]["name"] for n in (await api.list(NETWORK))["items"]] == names
        await wait_for(lambda: only([]), "app a's network to go")


async def test_a_network_object_with_a_subnet_is_checked_too(controller: RunningController
                                                             ) -> None:
    async with controller.client() as api:
        body = {"metadata": {"name": "n", "labels": {"x": "y"}},
                "spec": {"ipam": {"config": [{"subnet": "10.9.0.0/16"}]}}}
        made = await api.create_network(body)
        assert made["metadata"]["labels"] == {"x": "y"}
        spec = NetworkSpec(name="n", ipam=Ipam(config=[IpamConfig(subnet="10.9.0.0/16")]))
        assert made["spec"]["ipam"] == {"config": [{"subnet": str(spec.ipam.config[0].subnet)}]}
        with pytest.raises(ApiError) as info:
            await api.create_network({"name": "m", "subnet": "10.9.200.0/24"})
        assert "overlaps network n (standalone, 10.9.0.0/16)" in info.value.message
