from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from patient_portal.accounts.models import Relationship, Sex, StaffRole
from patient_portal.audit.models import Outcome
from patient_portal.auth.models import PrincipalKind, TokenKind
from patient_portal.crypto.fields import EncryptedDateField, EncryptedTextField
from patient_portal.jobs.models import JobStatus
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('booking', '0001_initial')]

    initial = True

    operations = [
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('kind', fields.CharEnumField(description='ACCESS: access\nREFRESH: refresh', enum_type=TokenKind, max_length=8)),
                ('family', fields.UUIDField(db_index=True)),
                ('principal_kind', fields.CharEnumField(description='PATIENT: patient\nSTAFF: staff', enum_type=PrincipalKind, max_length=8)),
                ('principal_id', fields.UUIDField(db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_api_token', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A bearer token of the mobile API, stored as its SHA-256.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('seq', fields.BigIntField(unique=True)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_kind', fields.CharField(max_length=16)),
                ('actor_id', fields.CharField(default='', max_length=64)),
                ('actor_role', fields.CharField(default='', max_length=24)),
                ('clinic_id', fields.CharField(default='', db_index=True, max_length=36)),
                ('action', fields.CharField(db_index=True, max_length=64)),
                ('target_kind', fields.CharField(default='', max_length=32)),
                ('target_id', fields.CharField(default='', max_length=64)),
                ('outcome', fields.CharEnumField(description='SUCCESS: success\nDENIED: denied\nFAILURE: failure', enum_type=Outcome, max_length=8)),
                ('ip', fields.CharField(default='', max_length=45)),
                ('user_agent', fields.CharField(default='', max_length=200)),
                ('detail', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(unique=True, max_length=64)),
            ],
            options={'table': 'portal_audit_entry', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'One event, numbered by ``seq`` without gaps and sealed by ``hash``.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditHead',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=16)),
                ('last_seq', fields.BigIntField(default=0)),
                ('last_hash', fields.CharField(max_length=64)),
                ('anchor_seq', fields.BigIntField(default=0)),
                ('anchor_hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'portal_audit_head', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'The single row that names the newest entry and the anchor the chain starts from.'},
            bases=['Model'],
        ),
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
            name='OtpChallenge',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('phone_index', fields.CharField(db_index=True, max_length=64)),
                ('code_hash', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('consumed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_otp_challenge', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A one-time code sent by the console verifier (the Twilio adapter keeps codes at Twilio).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PatientAccount',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('phone_index', fields.CharField(unique=True, max_length=64)),
                ('phone', EncryptedTextField(unique=False)),
                ('password_hash', fields.CharField(null=True, max_length=200)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('last_sign_in_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_patient_account', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'The sign-in identity of a patient: a verified mobile number, optionally a password.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Patient',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('portal.PatientAccount', source_field='account_id', db_constraint=True, to_field='id', related_name='patients', on_delete=OnDelete.RESTRICT)),
                ('relationship', fields.CharEnumField(default=Relationship.SELF, description='SELF: self\nCHILD: child\nPARENT: parent\nSPOUSE: spouse\nOTHER: other', enum_type=Relationship, max_length=8)),
                ('family_name', EncryptedTextField(unique=False)),
                ('given_name', EncryptedTextField(unique=False)),
                ('family_name_kana', EncryptedTextField(unique=False)),
                ('given_name_kana', EncryptedTextField(unique=False)),
                ('birth_date', EncryptedDateField(unique=False)),
                ('sex', fields.CharEnumField(default=Sex.UNKNOWN, description='FEMALE: female\nMALE: male\nOTHER: other\nUNKNOWN: unknown', enum_type=Sex, max_length=8)),
                ('postal_code', EncryptedTextField(null=True, unique=False)),
                ('email', EncryptedTextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'portal_patient', 'app': 'portal', 'pk_attr': 'id', 'table_description': "A patient record. An account holds the holder's own record and their family's."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ClinicRegistration',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='registrations', on_delete=OnDelete.RESTRICT)),
                ('patient', fields.ForeignKeyField('portal.Patient', source_field='patient_id', db_constraint=True, to_field='id', related_name='registrations', on_delete=OnDelete.RESTRICT)),
                ('patient_number', fields.CharField(max_length=20)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'portal_clinic_registration', 'app': 'portal', 'unique_together': (('clinic', 'patient'), ('clinic', 'patient_number')), 'pk_attr': 'id', 'table_description': 'A patient registered at a clinic (診察券). Staff see a patient only through this link.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Session',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('kind', fields.CharEnumField(description='PATIENT: patient\nSTAFF: staff', enum_type=PrincipalKind, max_length=8)),
                ('principal_id', fields.UUIDField(db_index=True)),
                ('mfa_pending', fields.BooleanField(default=False)),
                ('csrf_secret', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ip', fields.CharField(default='', max_length=45)),
                ('user_agent', fields.CharField(default='', max_length=200)),
            ],
            options={'table': 'portal_session', 'app': 'portal', 'pk_attr': 'id', 'table_description': "A signed-in browser. ``id`` is the SHA-256 of the cookie's value, never the value."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffMember',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', null=True, db_constraint=True, to_field='id', related_name='staff', on_delete=OnDelete.RESTRICT)),
                ('login_id', fields.CharField(unique=True, max_length=120)),
                ('display_name', fields.CharField(max_length=120)),
                ('display_name_kana', fields.CharField(max_length=120)),
                ('role', fields.CharEnumField(description='RECEPTIONIST: receptionist\nNURSE: nurse\nDOCTOR: doctor\nCLINIC_ADMIN: clinic_admin\nPLATFORM_OPERATOR: platform_operator', enum_type=StaffRole, max_length=24)),
                ('is_active', fields.BooleanField(default=True)),
                ('password_hash', fields.CharField(null=True, max_length=200)),
                ('password_changed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('totp_secret', EncryptedTextField(null=True, unique=False)),
                ('totp_enrolled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('totp_last_step', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('last_sign_in_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_staff_member', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A person working at one clinic with one role (a platform operator has no clinic).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PasswordHistory',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('portal.StaffMember', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='password_history', on_delete=OnDelete.CASCADE)),
                ('patient_account', fields.ForeignKeyField('portal.PatientAccount', source_field='patient_account_id', null=True, db_constraint=True, to_field='id', related_name='password_history', on_delete=OnDelete.CASCADE)),
                ('password_hash', fields.CharField(max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'portal_password_history', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'Every password hash an account has had, so that none is used again.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RecoveryCode',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('portal.StaffMember', source_field='staff_id', db_constraint=True, to_field='id', related_name='recovery_codes', on_delete=OnDelete.CASCADE)),
                ('code_hash', fields.CharField(unique=True, max_length=64)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'portal_recovery_code', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A single-use second-factor recovery code, stored as a hash and shown to its owner once.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffInvitation',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='invitations', on_delete=OnDelete.CASCADE)),
                ('login_id', fields.CharField(max_length=120)),
                ('display_name', fields.CharField(max_length=120)),
                ('display_name_kana', fields.CharField(max_length=120)),
                ('role', fields.CharEnumField(description='RECEPTIONIST: receptionist\nNURSE: nurse\nDOCTOR: doctor\nCLINIC_ADMIN: clinic_admin\nPLATFORM_OPERATOR: platform_operator', enum_type=StaffRole, max_length=24)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('invited_by', fields.ForeignKeyField('portal.StaffMember', source_field='invited_by_id', null=True, db_constraint=True, to_field='id', related_name='invitations_sent', on_delete=OnDelete.SET_NULL)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'portal_staff_invitation', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A single-use, expiring link a clinic admin sends to a new staff member.'},
            bases=['Model'],
        ),
    ]
