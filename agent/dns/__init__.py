"""The node's DNS server (docs/networking.md, "DNS"): service names, aliases,
tasks.SERVICE and hostnames of the querying container's networks, from Endpoints;
everything else forwarded to the node's upstream resolvers."""

from agent.dns.server import DnsServer
from agent.dns.table import Answer, NameTable, RoundRobin
from agent.dns.upstream import Upstream, node_upstreams, read_node_upstreams

__all__ = ["Answer", "DnsServer", "NameTable", "RoundRobin", "Upstream", "node_upstreams",
           "read_node_upstreams"]
