"""One entry per target kind: which clients it needs, how to read its capacity, how to plan.

The flow never branches on the kind: it looks the kind up here (``KINDS[kind]``), reads a
:class:`~.model.Current`, and asks for a :class:`~.model.Proposal`. A new kind is one reader,
one planner and one ``register(Kind(...))`` in a module here, imported below; its API call and handler live in the adapter that owns
the service (``opslib/aws/*``, ``opslib/k8s/*``).
The rules every kind shares (blast radius, autoscaler bounds) are in :mod:`.base`.
"""

from __future__ import annotations

from opslib.runbooks.scale.kinds import aws_databases, aws_dynamodb, aws_ecs, aws_eks, k8s
from opslib.runbooks.scale.kinds.base import KINDS, Connections, Kind, request_fields

__all__ = ["KINDS", "Connections", "Kind", "request_fields"]

#: every kind module registers itself on import; listed so the registry is complete
MODULES = (aws_ecs, k8s, aws_eks, aws_dynamodb, aws_databases)
