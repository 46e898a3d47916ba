from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('video', '0002_precall_check')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ConsultRecording',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('appointment_id', fields.UUIDField(db_index=True)),
                ('clinic_id', fields.UUIDField(db_index=True)),
                ('participant', fields.CharField(max_length=64)),
                ('segment', fields.IntField()),
                ('status', fields.CharField(default='recording', max_length=10)),
                ('end_reason', fields.CharField(null=True, max_length=16)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('seconds', fields.FloatField(default=0.0)),
                ('video_frames', fields.IntField(default=0)),
                ('audio_frames', fields.IntField(default=0)),
                ('width', fields.IntField(null=True)),
                ('height', fields.IntField(null=True)),
                ('file_bytes', fields.BigIntField(default=0)),
            ],
            options={'table': 'video_consult_recording', 'app': 'video', 'pk_attr': 'id', 'table_description': 'The recording of one participant in a consented recording segment, kept in a sealed file.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecordingConsent',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('appointment_id', fields.UUIDField(db_index=True)),
                ('clinic_id', fields.UUIDField()),
                ('participant', fields.CharField(max_length=64)),
                ('decision', fields.CharField(max_length=10)),
                ('segment', fields.IntField()),
                ('decided_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'video_recording_consent', 'app': 'video', 'pk_attr': 'id', 'table_description': 'A recording decision in a consult (asked, agreed, declined, withdrawn) kept as consent.'},
            bases=['Model'],
        ),
    ]
