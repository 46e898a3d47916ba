from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from patient_portal.auth.models import PrincipalKind
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('booking', '0001_initial'), ('portal', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PasskeyCredential',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('principal_kind', fields.CharEnumField(description='PATIENT: patient\nSTAFF: staff', enum_type=PrincipalKind, max_length=8)),
                ('principal_id', fields.UUIDField(db_index=True)),
                ('credential_id', fields.CharField(unique=True, max_length=400)),
                ('public_key', fields.TextField(unique=False)),
                ('sign_count', fields.BigIntField(default=0)),
                ('transports', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('name', fields.CharField(default='', max_length=80)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_passkey_credential', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A WebAuthn credential (passkey) of a patient account or a staff member.'},
            bases=['Model'],
        ),
    ]
