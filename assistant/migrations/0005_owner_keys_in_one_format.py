"""Owner keys in one format (assistant/askers.py): user:<id>, session:<key>, key:<id>, widget:..., cli."""

from django.db import migrations


def forwards(apps, schema_editor):
    Conversation = apps.get_model("assistant", "Conversation")
    Feedback = apps.get_model("assistant", "Feedback")
    for conversation in Conversation.objects.exclude(user=None).exclude(
        owner_key__startswith="user:"
    ):
        Conversation.objects.filter(pk=conversation.pk).update(
            owner_key=f"user:{conversation.user_id}"
        )
    for model in (Conversation, Feedback):
        for row in model.objects.exclude(owner_key="").exclude(owner_key__contains=":"):
            model.objects.filter(pk=row.pk).update(owner_key=f"session:{row.owner_key}")


def backwards(apps, schema_editor):
    Conversation = apps.get_model("assistant", "Conversation")
    Feedback = apps.get_model("assistant", "Feedback")
    for model in (Conversation, Feedback):
        for row in model.objects.filter(owner_key__startswith="session:"):
            model.objects.filter(pk=row.pk).update(owner_key=row.owner_key.removeprefix("session:"))


class Migration(migrations.Migration):
    dependencies = [("assistant", "0004_reply_truncated")]
    operations = [migrations.RunPython(forwards, backwards)]
