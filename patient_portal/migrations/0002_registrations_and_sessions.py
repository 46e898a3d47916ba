from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('booking', '0001_initial'), ('portal', '0001_initial')]

    initial = False

    operations = [
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
        ops.RemoveField(model_name='Session', name='revoked_at'),
    ]
