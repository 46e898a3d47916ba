from tortoise import migrations
from tortoise.migrations import operations as ops
from patient_portal.consult_models import VisitStatus
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('booking', '0001_initial'), ('booking', '0002_menus_hours_appointments'), ('booking', '0003_waitlist'), ('booking', '0004_clinic_settings'), ('portal', '0003_consult_records')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Visit',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('appointment_id', fields.UUIDField(unique=True)),
                ('clinic_id', fields.UUIDField(db_index=True)),
                ('patient_id', fields.UUIDField(null=True)),
                ('practitioner_id', fields.UUIDField()),
                ('ended_by', fields.CharField(max_length=64)),
                ('ended_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('identity_check', fields.ForeignKeyField('portal.IdentityCheck', source_field='identity_check_id', null=True, db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.SET_NULL)),
                ('questionnaire_response_id', fields.UUIDField(null=True)),
                ('chat_lines', fields.IntField(default=0)),
                ('status', fields.CharEnumField(default=VisitStatus.READY, description='READY: ready\nSENT: sent', enum_type=VisitStatus, max_length=8)),
            ],
            options={'table': 'portal_visit', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'The record an ended online consult leaves for the karte (what the clinic bridge sends).'},
            bases=['Model'],
        ),
    ]
