"""Registry client (OCI distribution API v2): push from and pull into the node's image
store, with basic and bearer-token auth, bounded retries and digest checks.

    client.py      one registry's HTTP: base URL, auth, retries, error bodies
    auth.py        basic and bearer (docker token spec), tokens cached per scope
    challenge.py   WWW-Authenticate parsing
    credentials.py the auth.json file (`skiff login`), 0600
    endpoint.py    reference → registry, repository, URL; the insecure (HTTP) list
    digests.py     verifying content while it streams
    manifests.py   Accept header, index → this platform's manifest
    pull.py, push.py, puller.py (once per node, for the agent)
"""

from agent.images.registry.client import RegistryClient, RetryPolicy
from agent.images.registry.credentials import AuthFile, Credentials
from agent.images.registry.endpoint import RemoteRef, parse_remote
from agent.images.registry.errors import (
    DigestMismatch,
    RegistryAuthError,
    RegistryError,
    RegistryUnreachable,
    RemoteNotFound,
)
from agent.images.registry.options import RegistryOptions
from agent.images.registry.progress import BlobEvent
from agent.images.registry.pull import PullResult, pull
from agent.images.registry.puller import ImagePuller
from agent.images.registry.push import PushResult, push

__all__ = [
    "AuthFile", "BlobEvent", "Credentials", "DigestMismatch", "ImagePuller", "PullResult",
    "PushResult", "RegistryAuthError", "RegistryClient", "RegistryError", "RegistryOptions",
    "RegistryUnreachable", "RemoteNotFound", "RemoteRef", "RetryPolicy", "parse_remote",
    "pull", "push",
]
