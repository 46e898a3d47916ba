from tortoise import migrations
from tortoise.migrations import operations as ops
from booking.models import WaitlistStatus
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('booking', '0002_menus_hours_appointments')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WaitlistEntry',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='waitlist', on_delete=OnDelete.RESTRICT)),
                ('menu', fields.ForeignKeyField('booking.Menu', source_field='menu_id', db_constraint=True, to_field='id', related_name='waitlist', on_delete=OnDelete.RESTRICT)),
                ('account_id', fields.UUIDField(db_index=True)),
                ('patient_id', fields.UUIDField()),
                ('first_day', fields.DateField()),
                ('last_day', fields.DateField()),
                ('status', fields.CharEnumField(default=WaitlistStatus.WAITING, description='WAITING: waiting\nOFFERED: offered\nBOOKED: booked\nWITHDRAWN: withdrawn\nLAPSED: lapsed', enum_type=WaitlistStatus, max_length=10)),
                ('offer_appointment_id', fields.UUIDField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'booking_waitlist_entry', 'app': 'booking', 'pk_attr': 'id', 'table_description': 'A patient waiting for a seat of a menu on one of a few days, first come first served.'},
            bases=['Model'],
        ),
    ]
