from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('video', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PrecallCheck',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('appointment_id', fields.UUIDField(db_index=True)),
                ('participant', fields.CharField(max_length=64)),
                ('status', fields.CharField(default='running', max_length=10)),
                ('level', fields.CharField(null=True, max_length=24)),
                ('figures', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('advice', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'video_precall_check', 'app': 'video', 'pk_attr': 'id', 'table_description': 'The outcome of one pre-call check, stored so any worker can answer for it.'},
            bases=['Model'],
        ),
    ]
