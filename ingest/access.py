"""Who may read which knowledge base, and who may manage it.

- Staff read and manage everything.
- Anyone (even signed out) reads a public knowledge base.
- A signed-in user reads the knowledge bases they are a member of.
- An API key reads only its knowledge bases, and writes to them only if it may.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from ingest.models import KnowledgeBase


def kbs_readable(*, user, key=None) -> QuerySet[KnowledgeBase]:
    if key is not None:
        return key.knowledge_bases.all()
    if user is not None and user.is_authenticated and user.is_staff:
        return KnowledgeBase.objects.all()
    rule = Q(visibility=KnowledgeBase.Visibility.PUBLIC)
    if user is not None and user.is_authenticated:
        rule |= Q(members=user)
    return KnowledgeBase.objects.filter(rule).distinct()


def kb_readable(*, kb: KnowledgeBase, user, key=None) -> bool:
    return kbs_readable(user=user, key=key).filter(pk=kb.pk).exists()


def kb_manageable(*, kb: KnowledgeBase, user, key=None) -> bool:
    if key is not None:
        return key.can_write and key.knowledge_bases.filter(pk=kb.pk).exists()
    return bool(user is not None and user.is_authenticated and user.is_staff)
