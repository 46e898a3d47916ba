from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from patient_portal.accounts.models import Sex, StaffRole
from patient_portal.jobs.models import JobStatus
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='JobRecord',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=120)),
                ('key', fields.CharField(null=True, unique=True, max_length=200)),
                ('payload', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=JobStatus.PENDING, description='PENDING: pending\nRUNNING: running\nSUCCEEDED: succeeded\nFAILED: failed', enum_type=JobStatus, max_length=16)),
                ('run_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('max_attempts', fields.IntField()),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(default='', max_length=500)),
                ('runner', fields.CharField(default='inprocess', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_job', 'app': 'portal', 'indexes': [Index(fields=['status', 'run_at'])], 'pk_attr': 'id', 'table_description': 'One job. ``key`` (optional, unique) makes enqueueing idempotent.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Patient',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('guardian', fields.ForeignKeyField('portal.Patient', source_field='guardian_id', null=True, db_constraint=True, to_field='id', related_name='family', on_delete=OnDelete.RESTRICT)),
                ('family_name', fields.CharField(max_length=60)),
                ('given_name', fields.CharField(max_length=60)),
                ('family_name_kana', fields.CharField(max_length=60)),
                ('given_name_kana', fields.CharField(max_length=60)),
                ('birth_date', fields.DateField()),
                ('sex', fields.CharEnumField(default=Sex.UNKNOWN, description='FEMALE: female\nMALE: male\nOTHER: other\nUNKNOWN: unknown', enum_type=Sex, max_length=8)),
                ('phone', fields.CharField(null=True, max_length=20)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'portal_patient', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A patient record. Family members are patients whose ``guardian`` is the account holder.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffMember',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='staff', on_delete=OnDelete.RESTRICT)),
                ('login_id', fields.CharField(unique=True, max_length=120)),
                ('display_name', fields.CharField(max_length=120)),
                ('display_name_kana', fields.CharField(max_length=120)),
                ('role', fields.CharEnumField(description='RECEPTIONIST: receptionist\nNURSE: nurse\nDOCTOR: doctor\nCLINIC_ADMIN: clinic_admin\nPLATFORM_OPERATOR: platform_operator', enum_type=StaffRole, max_length=24)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'portal_staff_member', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A person working at one clinic, with one role. ``login_id`` is what they sign in with.'},
            bases=['Model'],
        ),
    ]
