"""The documents list (API and page): pages, sorting, search, filters, bulk actions, readers."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from assistant.keys import api_key_create
from ingest.models import Chunk, Document
from ingest.services import document_create, kb_get_or_create

pytestmark = pytest.mark.django_db


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def make_documents(kb, count: int, *, chunk_every: int = 0) -> list[Document]:
    """`count` documents (created in order: the newest last), one chunk for every
    `chunk_every`-th one."""
    documents = Document.objects.bulk_create(
        Document(
            kb=kb,
            filename=f"doc-{i:05d}.md",
            sha256=f"{i:064x}",
            kind="markdown",
            size_bytes=1000 + i,
            status="ready" if i % 3 else "failed",
            error="" if i % 3 else f"Broken file number {i}",
            chunk_count=1,
        )
        for i in range(count)
    )
    if chunk_every:
        Chunk.objects.bulk_create(
            Chunk(
                kb=kb,
                document=d,
                vector_id=f"v{d.pk}",
                ordinal=0,
                text=f"Manual {d.filename} about routers",
                token_count=5,
            )
            for d in documents[::chunk_every]
        )
    return documents


@pytest.fixture
def staff():
    user = get_user_model().objects.create_user("boss", password="pw-123456", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def listing(client, slug: str, **params) -> dict:
    response = client.get(f"/api/kbs/{slug}/documents", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_list_is_a_page_with_the_total(kb, staff):
    make_documents(kb, 120)
    first = listing(staff, kb.slug)
    assert first["total"] == 120 and first["limit"] == 50 and first["offset"] == 0
    assert [d["filename"] for d in first["items"][:2]] == ["doc-00119.md", "doc-00118.md"]
    last = listing(staff, kb.slug, offset=100)
    assert len(last["items"]) == 20 and last["items"][-1]["filename"] == "doc-00000.md"
    assert listing(staff, kb.slug, limit=5000)["limit"] == 200  # capped


def test_sorts_filters_and_search_by_name_error_and_text(kb, staff):
    make_documents(kb, 30, chunk_every=10)  # chunks for doc 0, 10, 20
    Document.objects.filter(filename="doc-00007.md").update(filename="Alpha.md", size_bytes=9)
    by_name = listing(staff, kb.slug, sort="name")["items"]
    assert by_name[0]["filename"] == "Alpha.md"  # ignoring case: before "doc-..."
    assert listing(staff, kb.slug, sort="-name")["items"][-1]["filename"] == "Alpha.md"
    assert listing(staff, kb.slug, sort="size")["items"][0]["filename"] == "Alpha.md"
    failed = listing(staff, kb.slug, status="failed")
    assert failed["total"] == 10 and {d["status"] for d in failed["items"]} == {"failed"}
    assert listing(staff, kb.slug, kind="pdf")["total"] == 0
    assert [d["filename"] for d in listing(staff, kb.slug, q="ALPHA")["items"]] == ["Alpha.md"]
    assert listing(staff, kb.slug, q="number 12")["items"][0]["filename"] == "doc-00012.md"
    by_text = listing(staff, kb.slug, q="routers", sort="name")["items"]
    assert [d["filename"] for d in by_text] == ["doc-00000.md", "doc-00010.md", "doc-00020.md"]
    bad = staff.get(f"/api/kbs/{kb.slug}/documents", {"sort": "secret"})
    assert bad.status_code == 422 and "Sort by one of" in bad.json()["detail"]


def test_listing_two_thousand_documents_takes_a_few_queries(
    kb, staff, django_assert_max_num_queries
):
    """Before: one query per row for its knowledge base (and its uploader)."""
    uploader = get_user_model().objects.create_user("uploader")
    make_documents(kb, 2000, chunk_every=20)
    Document.objects.update(uploaded_by=uploader)
    with django_assert_max_num_queries(12):
        page = listing(staff, kb.slug, limit=200, q="routers")
    assert len(page["items"]) == 100 and page["items"][0]["uploaded_by"] == "uploader"
    with django_assert_max_num_queries(12):
        assert len(listing(staff, kb.slug, limit=200, sort="-chunks")["items"]) == 200


def test_a_user_upload_records_who_and_the_too_big_reason_is_human(kb, staff, settings):
    settings.MAX_UPLOAD_BYTES = 3 * 1024 * 1024
    big = io.BytesIO(b"x" * (5 * 1024 * 1024))
    big.name = "huge.txt"
    small = io.BytesIO(b"# Fine\n\nSmall.")
    small.name = "fine.md"
    response = staff.post(f"/api/kbs/{kb.slug}/documents", {"files": [big, small]})
    assert response.status_code == 201
    rejected, accepted = response.json()
    assert accepted["document"]["status"] == "queued"
    assert rejected["created"] and rejected["document"]["status"] == "failed"
    assert rejected["document"]["error"] == "This file is 5 MB; the limit is 3 MB."
    assert [d["uploaded_by"] for d in listing(staff, kb.slug)["items"]] == ["boss", "boss"]
    _, token = api_key_create(name="w", knowledge_bases=[kb], can_write=True)
    again = io.BytesIO(b"# Other\n\nFrom a key.")
    again.name = "key.md"
    Client().post(f"/api/kbs/{kb.slug}/documents", {"files": [again]}, **bearer(token))
    assert listing(staff, kb.slug, q="key.md")["items"][0]["uploaded_by"] is None


def test_bulk_delete_and_reindex_report_done_and_skipped(kb, staff, store):
    ready = [
        document_create(kb=kb, filename=f"r{i}.md", content=io.BytesIO(f"# {i}".encode()))
        for i in range(3)
    ]
    Document.objects.filter(pk__in=[r.document.pk for r in ready]).update(status="ready")
    rejected = document_create(kb=kb, filename="empty.md", content=io.BytesIO(b"")).document
    other = make_documents(kb_get_or_create(name="Other"), 1)[0]
    ids = [r.document.pk for r in ready]

    def bulk(action, chosen):
        body = json.dumps({"action": action, "ids": chosen})
        return staff.post(
            f"/api/kbs/{kb.slug}/documents/bulk", body, content_type="application/json"
        )

    reindexed = bulk("reindex", [*ids, rejected.pk, other.pk]).json()
    assert reindexed["done"] == ids
    assert {s["id"]: s["reason"] for s in reindexed["skipped"]} == {
        rejected.pk: "Rejected on upload; upload it again.",
        other.pk: "Not in this knowledge base (deleted already?).",
    }
    assert set(Document.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}
    again = bulk("reindex", ids[:1]).json()
    assert again["done"] == [] and again["skipped"][0]["reason"].startswith("Already queued")
    deleted = bulk("delete", [ids[0], ids[1], other.pk]).json()
    assert deleted["done"] == ids[:2] and [s["id"] for s in deleted["skipped"]] == [other.pk]
    assert set(Document.objects.values_list("pk", flat=True)) == {ids[2], rejected.pk, other.pk}
    assert bulk("explode", ids).status_code == 422
    assert bulk("delete", [10**30]).json()["skipped"][0]["id"] == 10**30  # no server error


def test_a_member_reads_the_page_and_list_but_changes_nothing(kb, store):
    make_documents(kb, 3)
    member = get_user_model().objects.create_user("member", password="pw-123456")
    kb.members.add(member)
    client = Client()
    client.force_login(member)
    page = client.get(f"/kb/{kb.slug}/documents/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-manage="0"' in html and 'id="files"' not in html and "bulk-bar" not in html
    assert listing(client, kb.slug)["total"] == 3
    body = json.dumps(
        {"action": "delete", "ids": list(Document.objects.values_list("pk", flat=True))}
    )
    bulk = client.post(f"/api/kbs/{kb.slug}/documents/bulk", body, content_type="application/json")
    assert bulk.status_code == 403 and Document.objects.count() == 3


def test_signed_out_goes_to_the_docent_login_and_a_stranger_gets_404(kb):
    response = Client().get(f"/kb/{kb.slug}/documents/?q=x")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/kb/")
    stranger = get_user_model().objects.create_user("stranger", password="pw-123456")
    client = Client()
    client.force_login(stranger)
    assert client.get(f"/kb/{kb.slug}/documents/").status_code == 404
    assert client.get(f"/api/kbs/{kb.slug}/documents").status_code == 404


def test_staff_page_carries_the_upload_limit_and_types(kb, staff, settings):
    settings.MAX_UPLOAD_BYTES = 100 * 1024 * 1024
    html = staff.get(f"/kb/{kb.slug}/documents/").content.decode()
    assert f'data-max-bytes="{100 * 1024 * 1024}"' in html and "up to 100 MB each" in html
    assert 'data-accept=".pdf,.docx,' in html and ".png" in html and 'data-manage="1"' in html
