from tortoise import migrations
from tortoise.migrations import operations as ops
from patient_portal.consult_models import IdentityDocument, IdentityResult
from patient_portal.crypto.fields import EncryptedTextField
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('booking', '0004_clinic_settings'), ('portal', '0002_passkeys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ConsultChatLine',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('appointment_id', fields.UUIDField(db_index=True)),
                ('clinic_id', fields.UUIDField()),
                ('sender', fields.CharField(max_length=64)),
                ('message_id', fields.CharField(null=True, max_length=64)),
                ('body', EncryptedTextField(unique=False)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_consult_chat', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'One chat line of a consult, stored with the visit (the text encrypted at rest).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IdentityCheck',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('appointment_id', fields.UUIDField(db_index=True)),
                ('clinic_id', fields.UUIDField()),
                ('staff_id', fields.UUIDField()),
                ('document', fields.CharEnumField(description='MY_NUMBER_CARD: my_number_card\nDRIVERS_LICENSE: drivers_license\nPASSPORT: passport\nRESIDENCE_CARD: residence_card\nINSURANCE_CARD: insurance_card\nOTHER: other', enum_type=IdentityDocument, max_length=20)),
                ('result', fields.CharEnumField(description='CONFIRMED: confirmed\nNOT_CONFIRMED: not_confirmed', enum_type=IdentityResult, max_length=16)),
                ('note', EncryptedTextField(default='', unique=False)),
                ('checked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_identity_check', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'The identity check a doctor made in a consult: which document, and the result.'},
            bases=['Model'],
        ),
    ]
