"""How to reach registries: credentials, the insecure list, retries. One value shared by
pushes and pulls (the CLI builds it from flags and files; the agent from its settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agent.images.registry.client import RegistryClient, RetryPolicy
from agent.images.registry.credentials import AuthFile, Credentials
from agent.images.registry.endpoint import insecure_from_env

CredentialLookup = Callable[[str], Credentials | None]


def _no_credentials(_registry: str) -> Credentials | None:
    return None


@dataclass(frozen=True)
class RegistryOptions:
    credentials: CredentialLookup = _no_credentials
    insecure: tuple[str, ...] = field(default_factory=insecure_from_env)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_auth_file(cls, auth_file: AuthFile, insecure: tuple[str, ...] = (),
                       retry: RetryPolicy | None = None) -> RegistryOptions:
        return cls(credentials=auth_file.get, insecure=(*insecure_from_env(), *insecure),
                   retry=retry or RetryPolicy())

    def client(self, registry: str) -> RegistryClient:
        return RegistryClient(registry, credentials=self.credentials(registry),
                              insecure=self.insecure, retry=self.retry)
