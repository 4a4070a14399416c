"""Knowledge bases, their documents, the chunks retrieval searches, and image assets."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.text import slugify


def validate_stop_sequences(value: str) -> None:
    lines = [line for line in value.splitlines() if line.strip()]
    if len(lines) > 4:
        raise ValidationError("Give at most 4 stop sequences, one per line.")
    if any(len(line) > 100 for line in lines):
        raise ValidationError("Keep each stop sequence under 100 characters.")


def validate_sync_folder(value: str) -> None:
    """A folder the worker may mirror: absolute, existing, inside SYNC_FOLDER_ROOTS (the
    server's operator lists them; staff can't point a knowledge base at any file)."""
    if not value:
        return
    roots = [Path(root).resolve() for root in settings.SYNC_FOLDER_ROOTS]
    if not roots:
        raise ValidationError(
            "Folder sync from the settings is off: the server's SYNC_FOLDER_ROOTS lists no "
            "folder (manage.py sync still works from the command line)."
        )
    folder = Path(value)
    if not folder.is_absolute():
        raise ValidationError("Give the folder's absolute path on the server.")
    folder = folder.resolve()
    if not any(folder == root or root in folder.parents for root in roots):
        raise ValidationError(
            "That folder is outside SYNC_FOLDER_ROOTS: " + ", ".join(map(str, roots)) + "."
        )
    if not folder.is_dir():
        raise ValidationError(f"{folder} is not a folder on the server.")


class KnowledgeBase(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "Anyone, signed in or not"
        MEMBERS = "members", "Staff and the members listed"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.MEMBERS
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="knowledge_bases"
    )
    # Chat settings; blank means the site-wide default from the environment.
    system_prompt = models.TextField(
        blank=True, help_text="Extra instructions for the assistant, added to Docent's own rules"
    )
    model = models.CharField(
        max_length=200, blank=True, help_text="Model id, e.g. ministral-8b-2512"
    )
    temperature = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(2)],
        help_text="0-2; blank: the model card's default",
    )
    top_p = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Nucleus sampling, 0-1; blank: the model's default",
    )
    stop_sequences = models.TextField(
        blank=True,
        validators=[validate_stop_sequences],
        help_text="The answer ends at any of these; one per line, at most 4",
    )
    seed = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="The same seed gives the same answer where the provider supports it",
    )
    frequency_penalty = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-2), MaxValueValidator(2)]
    )
    presence_penalty = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(-2), MaxValueValidator(2)]
    )
    retrieval_budget = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(256), MaxValueValidator(256_000)],
        help_text="Tokens of retrieved sources per question (up to 256000)",
    )
    starter_questions = models.TextField(
        blank=True,
        max_length=2000,
        help_text="Questions offered on an empty chat, one per line (at most 4 are shown)",
    )
    no_match_threshold = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=(
            "Cosine similarity (0-1) a question's best passage must reach to be answered "
            'from sources; below it the answer is "no match". Empty: calibrated from this '
            "knowledge base's own passages. Measure a change with an evaluation run."
        ),
    )
    sync_folder = models.CharField(
        "synced folder",
        max_length=1000,
        blank=True,
        validators=[validate_sync_folder],
        help_text=(
            "A folder on the server that this knowledge base mirrors: the worker uploads new "
            "files, re-indexes changed ones and deletes removed ones every "
            "SYNC_INTERVAL_SECONDS. It must be inside SYNC_FOLDER_ROOTS. Empty: no sync."
        ),
    )
    sync_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The embedder (model and backend) that made this knowledge base's vectors; blank until
    # its first document is indexed. Another embedder's vectors are never mixed in.
    embedder = models.CharField(max_length=200, blank=True, editable=False)
    # How close (cosine) a question's best passage must be for this knowledge base to
    # count as answering it, calibrated from its own vectors (ingest/services/calibration.py)
    # when its size has changed enough; null until it has enough passages.
    match_threshold = models.FloatField(null=True, blank=True, editable=False)
    match_calibrated_chunks = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The settings an admin may change, declared once: the admin, the settings page and the
    # API all derive their fields from these.
    SETTINGS = (
        "description",
        "visibility",
        "system_prompt",
        "model",
        "temperature",
        "top_p",
        "stop_sequences",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "retrieval_budget",
        "starter_questions",
        "no_match_threshold",
        "sync_folder",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            digest = hashlib.sha1(self.name.encode()).hexdigest()[:10]  # noqa: S324
            self.slug = slugify(self.name)[:100] or f"kb-{digest}"
        super().save(*args, **kwargs)

    @property
    def starters(self) -> list[str]:
        """The starter questions to offer, at most 4, blank lines dropped."""
        lines = (line.strip() for line in self.starter_questions.splitlines())
        return [line[:200] for line in lines if line][:4]

    @property
    def stop(self) -> tuple[str, ...]:
        return tuple(line for line in self.stop_sequences.splitlines() if line.strip())

    @property
    def collection_name(self) -> str:
        """The Chroma collection holding this knowledge base's vectors (one per KB)."""
        # From a UUID, not the row id: ids can be reused (a restored or reset database),
        # and a new knowledge base must never inherit an old one's vectors.
        return f"docent_kb_{self.uid.hex}"


class DocumentKind(models.TextChoices):
    PDF = "pdf", "PDF"
    DOCX = "docx", "Word document"
    MARKDOWN = "markdown", "Markdown"
    TEXT = "text", "Plain text"
    HTML = "html", "HTML"
    IMAGE = "image", "Image"


class DocumentStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class DocumentStage(models.TextChoices):
    QUEUED = "queued", "Queued"
    EXTRACTING = "extracting", "Extracting"
    OCR = "ocr", "OCR"
    EMBEDDING = "embedding", "Embedding"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class DocumentFailure(models.TextChoices):
    """Why a document failed, which decides whether trying again can help."""

    NONE = "", "No failure"
    REJECTED = "rejected", "Refused on upload (size, type, empty); nothing was kept"
    UNREADABLE = "unreadable", "The file itself can't be indexed (damaged, locked, no text)"
    INTERRUPTED = "interrupted", "Stopped by a crash, a time or memory limit, or an outage"
    CANCELLED = "cancelled", "Cancelled by a person"


def document_upload_to(instance: Document, filename: str) -> str:
    # The stored name never uses the uploader's filename, so no traversal or odd
    # Unicode reaches the filesystem; the display name lives in `filename`.
    return f"kb/{instance.kb_id}/documents/{instance.sha256}"


class Document(models.Model):
    kb = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    filename = models.CharField(max_length=255, help_text="Sanitised display name")
    file = models.FileField(upload_to=document_upload_to, max_length=500)
    sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=DocumentKind.choices, blank=True)
    source = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Where it came from when synced: the file's absolute path, or a URL",
    )
    tag = models.CharField(
        max_length=64,
        blank=True,
        help_text="A free-form label (e.g. 'billing' or 'v2'); questions can be limited to it",
    )
    mime_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.QUEUED
    )
    stage = models.CharField(
        max_length=16, choices=DocumentStage.choices, default=DocumentStage.QUEUED
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent, 0-100")
    progress_detail = models.CharField(
        max_length=100, blank=True, help_text='How far, for people: "page 12 of 117"'
    )
    error = models.TextField(blank=True)
    failure = models.CharField(
        max_length=16, choices=DocumentFailure.choices, blank=True, default=DocumentFailure.NONE
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    generation = models.PositiveIntegerField(
        default=0, help_text="Index generation whose chunks are live; 0 means none yet"
    )
    chunk_count = models.PositiveIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True, help_text="Latest queued ingest task")
    lease_owner = models.CharField(max_length=128, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who uploaded it, when a signed-in user did (not an API key or the CLI)",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Only stored files count: an upload refused on arrival (empty, too large, an
            # unsupported type) never makes a later upload of the same bytes a duplicate.
            models.UniqueConstraint(
                fields=["kb", "sha256"],
                condition=~models.Q(file=""),
                name="document_unique_stored_bytes_per_kb",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"]),
            # The documents page lists one knowledge base at a time, newest first or by name.
            models.Index(fields=["kb", "created_at", "id"], name="document_kb_created"),
            models.Index("kb", Lower("filename"), name="document_kb_name"),  # A-Z, any case
            models.Index(fields=["kb", "status"], name="document_kb_status"),
            models.Index(fields=["kb", "tag"], name="document_kb_tag"),
            models.Index(fields=["kb", "source"], name="document_kb_source"),
        ]

    def __str__(self) -> str:
        return self.filename

    @property
    def retryable(self) -> bool:
        """Whether re-indexing can succeed now: the one rule every surface uses.

        True for a ready document (re-index) and for a failure that was not the file's
        fault (a crash, a time or memory limit, an outage, a cancel). False while queued or
        processing, for an upload that was refused (nothing kept) or a file that can't be
        indexed as it is, and while a cancelled document's worker is still letting go.
        """
        if self.status in (DocumentStatus.QUEUED, DocumentStatus.PROCESSING) or not self.file:
            return False
        if self.failure in (DocumentFailure.REJECTED, DocumentFailure.UNREADABLE):
            return False
        stopping = self.lease_owner and (
            self.lease_expires_at is None or self.lease_expires_at > timezone.now()
        )
        return not stopping


class Asset(models.Model):
    """An image kept so it can be shown to the model: a screenshot upload or a PDF image."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded image"
        PDF_IMAGE = "pdf_image", "Image inside a PDF"

    kb = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="assets")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="assets")
    generation = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=16, choices=Source.choices)
    page = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(max_length=500)
    mime_type = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    ocr_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["document_id", "page", "id"]

    def __str__(self) -> str:
        return f"{self.document} image p{self.page or '-'}"


class Chunk(models.Model):
    kb = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    vector_id = models.CharField(max_length=64, unique=True, help_text="Id of the Chroma vector")
    ordinal = models.PositiveIntegerField()
    page = models.PositiveIntegerField(null=True, blank=True, help_text="1-based page, if paged")
    heading = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    token_count = models.PositiveIntegerField(help_text="Ministral (Tekken) tokens in `text`")
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_unique_ordinal"),
        ]

    def __str__(self) -> str:
        return f"{self.document} #{self.ordinal}"
