from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("recsys", "0003_interests_understanding"),
    ]

    operations = [
        migrations.CreateModel(
            name="TrainedModel",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=64)),
                ("version", models.PositiveIntegerField()),
                ("blob", models.BinaryField()),
                ("metrics", models.JSONField(blank=True, default=dict, help_text="Training data size, loss, timings.")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["name", "-version"],
                "constraints": [models.UniqueConstraint(fields=("name", "version"), name="recsys_trained_model_version")],
            },
        ),
    ]
