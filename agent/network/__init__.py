"""The node's container networks.

Public API: NodeNetwork (node.py), with two kinds of network side by side:
- the node's single bridge (ensure/attach/detach → Endpoint): one range, outbound NAT;
- cluster networks joined across nodes by VXLAN (ensure_network/set_peers/attach_networks/
  remove_network), configured by NetworkConfig and Peer (config.py), giving
  NetworkEndpoint / Attachment (attach.py).
hosts_file / resolv_conf (files.py) build a container's /etc/hosts and /etc/resolv.conf.
The building blocks are ipam.py, bridge.py, endpoint.py, netns.py (thread-confined namespace
work), naming.py, devices.py, peers.py, firewall.py, overlay.py and attach.py.
"""

from agent.network.attach import Attachment, NetworkEndpoint
from agent.network.config import NetworkConfig, Peer
from agent.network.endpoint import Endpoint
from agent.network.errors import NetworkError
from agent.network.files import host_resolv_conf, hosts_file, resolv_conf
from agent.network.node import NodeNetwork
from agent.network.peers import PeerChanges

__all__ = ["Attachment", "Endpoint", "NetworkConfig", "NetworkEndpoint", "NetworkError",
           "NodeNetwork", "Peer", "PeerChanges", "host_resolv_conf", "hosts_file",
           "resolv_conf"]
