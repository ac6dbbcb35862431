# Read positions, and each message's event number of its creation (unread counts compare the two).

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0010_mute_room'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='number',
            field=models.PositiveBigIntegerField(db_default=0, default=0, editable=False),
        ),
        # Rows made before: their latest event number stands in for their first (no earlier one is kept).
        migrations.RunSQL("UPDATE chat_message SET number = seq", migrations.RunSQL.noop),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('removed_at__isnull', True)), fields=['room', 'number'], name='message_room_numbers'),
        ),
        migrations.CreateModel(
            name='ReadPosition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reader', models.CharField(max_length=64)),
                ('room', models.CharField(max_length=64)),
                ('seen', models.PositiveBigIntegerField(default=0)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('reader', 'room'), name='read_position_once')],
            },
        ),
    ]
