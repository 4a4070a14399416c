from datetime import UTC, datetime

from django.db import migrations, models


def copy_widget_usage(apps, schema_editor):
    """Keep today's widget counts: a quota must not reset because Docent was upgraded."""
    WidgetUsage = apps.get_model("assistant", "WidgetUsage")
    Usage = apps.get_model("assistant", "Usage")
    Usage.objects.bulk_create(
        Usage(
            scope=f"widget:{row.widget_id}",
            key=row.key,
            window_start=datetime.combine(row.day, datetime.min.time(), tzinfo=UTC),
            count=row.count,
        )
        for row in WidgetUsage.objects.all()
    )


class Migration(migrations.Migration):
    dependencies = [("assistant", "0005_owner_keys_in_one_format")]

    operations = [
        migrations.CreateModel(
            name="Usage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("scope", models.CharField(help_text="widget:<id>, chat or login", max_length=40)),
                (
                    "key",
                    models.CharField(help_text="e.g. visitor:<id>, ip:<address>", max_length=200),
                ),
                ("window_start", models.DateTimeField()),
                ("count", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("scope", "key", "window_start"), name="usage_once_per_window"
                    )
                ],
                "indexes": [models.Index(fields=["window_start"], name="assistant_u_window__idx")],
            },
        ),
        migrations.RunPython(copy_widget_usage, migrations.RunPython.noop),
        migrations.DeleteModel(name="WidgetUsage"),
    ]
