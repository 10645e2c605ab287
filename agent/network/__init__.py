"""The node's container network: bridge + veth + host-local IPAM, outbound NAT.

Public API: NodeNetwork (node.py) and Endpoint; hosts_file / resolv_conf (files.py) build a
container's /etc/hosts and /etc/resolv.conf. The building blocks are ipam.py, bridge.py,
endpoint.py and netns.py (thread-confined namespace work).
"""

from agent.network.endpoint import Endpoint
from agent.network.errors import NetworkError
from agent.network.files import host_resolv_conf, hosts_file, resolv_conf
from agent.network.node import NodeNetwork

__all__ = ["Endpoint", "NetworkError", "NodeNetwork", "host_resolv_conf", "hosts_file",
           "resolv_conf"]
