from tortoise import migrations
from tortoise.migrations import operations as ops
from interview_forms.sealed import SealedBytesField
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('booking', '0001_initial'), ('booking', '0002_menus_hours_appointments'), ('booking', '0003_waitlist'), ('booking', '0004_clinic_settings'), ('portal', '0004_visits')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IdentityPhoto',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('appointment_id', fields.UUIDField(unique=True)),
                ('clinic_id', fields.UUIDField()),
                ('patient_id', fields.UUIDField()),
                ('content_type', fields.CharField(max_length=40)),
                ('data', SealedBytesField(unique=False)),
                ('uploaded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_identity_photo', 'app': 'portal', 'pk_attr': 'id', 'table_description': "A photo of the patient's ID document for one consult, shown to the clinic only."},
            bases=['Model'],
        ),
    ]
