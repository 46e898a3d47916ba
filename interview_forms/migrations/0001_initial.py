from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from interview_forms.models import ResponseStatus, VersionStatus
from interview_forms.sealed import SealedBytesField, SealedJSONField
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='QuestionnaireVersion',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic_id', fields.UUIDField(db_index=True)),
                ('key', fields.CharField(max_length=64)),
                ('version', fields.IntField()),
                ('status', fields.CharEnumField(default=VersionStatus.DRAFT, description='DRAFT: draft\nPUBLISHED: published\nRETIRED: retired', enum_type=VersionStatus, max_length=10)),
                ('title', fields.CharField(max_length=200)),
                ('body', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('tests', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by', fields.UUIDField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'forms_questionnaire_version', 'app': 'interview_forms', 'unique_together': (('clinic_id', 'key', 'version'),), 'pk_attr': 'id', 'table_description': "One version of a clinic's questionnaire (FHIR R4 Questionnaire JSON in ``body``)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FormResponse',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic_id', fields.UUIDField(db_index=True)),
                ('questionnaire', fields.ForeignKeyField('interview_forms.QuestionnaireVersion', source_field='questionnaire_id', db_constraint=True, to_field='id', related_name='responses', on_delete=OnDelete.RESTRICT)),
                ('account_id', fields.UUIDField(db_index=True)),
                ('patient_id', fields.UUIDField(db_index=True)),
                ('appointment_id', fields.UUIDField(null=True, db_index=True)),
                ('status', fields.CharEnumField(default=ResponseStatus.IN_PROGRESS, description='IN_PROGRESS: in_progress\nCOMPLETED: completed', enum_type=ResponseStatus, max_length=12)),
                ('section', fields.IntField(default=0)),
                ('answers', SealedJSONField(unique=False)),
                ('response', SealedJSONField(null=True, unique=False)),
                ('structured', SealedJSONField(null=True, unique=False)),
                ('outcomes', SealedJSONField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'forms_response', 'app': 'interview_forms', 'pk_attr': 'id', 'table_description': "A patient's answers to one questionnaire version, usually for one appointment."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FormAttachment',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('form_response', fields.ForeignKeyField('interview_forms.FormResponse', source_field='form_response_id', db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.CASCADE)),
                ('link_id', fields.CharField(max_length=255)),
                ('content_type', fields.CharField(max_length=40)),
                ('size', fields.IntField()),
                ('sha256', fields.CharField(max_length=64)),
                ('data', SealedBytesField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'forms_attachment', 'app': 'interview_forms', 'pk_attr': 'id', 'table_description': 'An image a patient attached to an answer (a photo of a rash, the お薬手帳).'},
            bases=['Model'],
        ),
    ]
