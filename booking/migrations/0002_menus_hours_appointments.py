from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from booking.models import AppointmentStatus, VisitKind, VisitMode
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('booking', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Practitioner',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='practitioners', on_delete=OnDelete.RESTRICT)),
                ('staff_id', fields.UUIDField(null=True)),
                ('display_name', fields.CharField(max_length=120)),
                ('display_name_kana', fields.CharField(max_length=120)),
                ('is_active', fields.BooleanField(default=True)),
            ],
            options={'table': 'booking_practitioner', 'app': 'booking', 'pk_attr': 'id', 'table_description': 'Someone patients book: a doctor (linked to a staff account by id, if they have one).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HoursException',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='exceptions', on_delete=OnDelete.CASCADE)),
                ('practitioner', fields.ForeignKeyField('booking.Practitioner', source_field='practitioner_id', null=True, db_constraint=True, to_field='id', related_name='exceptions', on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField()),
                ('closed', fields.BooleanField(default=True)),
                ('start_minute', fields.IntField(null=True)),
                ('end_minute', fields.IntField(null=True)),
                ('note', fields.CharField(default='', max_length=200)),
            ],
            options={'table': 'booking_hours_exception', 'app': 'booking', 'pk_attr': 'id', 'table_description': 'A date that differs from the week: closed (all day or a range), or extra hours.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Menu',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='menus', on_delete=OnDelete.RESTRICT)),
                ('title_ja', fields.CharField(max_length=120)),
                ('title_en', fields.CharField(max_length=120)),
                ('description_ja', fields.TextField(default='', unique=False)),
                ('description_en', fields.TextField(default='', unique=False)),
                ('mode', fields.CharEnumField(description='IN_PERSON: in_person\nONLINE: online\nBOTH: both', enum_type=VisitMode, max_length=10)),
                ('visit_kind', fields.CharEnumField(description='FIRST: first\nREVISIT: revisit\nEITHER: either', enum_type=VisitKind, max_length=8)),
                ('duration_minutes', fields.IntField()),
                ('capacity', fields.IntField(default=1)),
                ('fee_yen', fields.IntField(default=0)),
                ('booking_fee_yen', fields.IntField(default=0)),
                ('questionnaire_id', fields.CharField(null=True, max_length=64)),
                ('min_notice_minutes', fields.IntField(default=60)),
                ('max_days_ahead', fields.IntField(default=30)),
                ('buffer_before_minutes', fields.IntField(default=0)),
                ('buffer_after_minutes', fields.IntField(default=0)),
                ('cancel_deadline_minutes', fields.IntField(default=120)),
                ('visible_to_patients', fields.BooleanField(default=True)),
                ('online_rules', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('sort_order', fields.IntField(default=0)),
                ('practitioners', fields.ManyToManyField('booking.Practitioner', unique=True, db_constraint=True, through='booking_menu_practitioner', forward_key='practitioner_id', backward_key='booking_menu_id', related_name='menus', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'booking_menu', 'app': 'booking', 'pk_attr': 'id', 'table_description': 'A kind of visit a clinic offers (診療メニュー), with its booking rules.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Appointment',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('clinic', fields.ForeignKeyField('booking.Clinic', source_field='clinic_id', db_constraint=True, to_field='id', related_name='appointments', on_delete=OnDelete.RESTRICT)),
                ('menu', fields.ForeignKeyField('booking.Menu', source_field='menu_id', db_constraint=True, to_field='id', related_name='appointments', on_delete=OnDelete.RESTRICT)),
                ('practitioner', fields.ForeignKeyField('booking.Practitioner', source_field='practitioner_id', db_constraint=True, to_field='id', related_name='appointments', on_delete=OnDelete.RESTRICT)),
                ('account_id', fields.UUIDField(db_index=True)),
                ('patient_id', fields.UUIDField(null=True, db_index=True)),
                ('starts_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(description='HELD: held\nBOOKED: booked\nCHECKED_IN: checked_in\nIN_CONSULT: in_consult\nDONE: done\nCANCELLED: cancelled\nNO_SHOW: no_show\nEXPIRED: expired', enum_type=AppointmentStatus, max_length=12)),
                ('hold_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('overbooked', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'booking_appointment', 'app': 'booking', 'pk_attr': 'id', 'table_description': "A booking (or a hold on the way to one). ``patient_id``/``account_id`` name the portal's"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SeatClaim',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('practitioner', fields.ForeignKeyField('booking.Practitioner', source_field='practitioner_id', db_constraint=True, to_field='id', related_name='claims', on_delete=OnDelete.RESTRICT)),
                ('cell_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('seat', fields.IntField()),
                ('appointment', fields.ForeignKeyField('booking.Appointment', source_field='appointment_id', db_constraint=True, to_field='id', related_name='claims', on_delete=OnDelete.CASCADE)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'booking_seat_claim', 'app': 'booking', 'unique_together': (('practitioner', 'cell_start', 'seat'),), 'pk_attr': 'id', 'table_description': "One seat of a practitioner's five-minute cell, taken by an appointment or a hold."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WeeklyHours',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('practitioner', fields.ForeignKeyField('booking.Practitioner', source_field='practitioner_id', db_constraint=True, to_field='id', related_name='hours', on_delete=OnDelete.CASCADE)),
                ('menu', fields.ForeignKeyField('booking.Menu', source_field='menu_id', null=True, db_constraint=True, to_field='id', related_name='hours', on_delete=OnDelete.CASCADE)),
                ('weekday', fields.IntField()),
                ('start_minute', fields.IntField()),
                ('end_minute', fields.IntField()),
            ],
            options={'table': 'booking_weekly_hours', 'app': 'booking', 'pk_attr': 'id', 'table_description': 'One opening range of a practitioner on a weekday (0 = Monday), for all menus or one.'},
            bases=['Model'],
        ),
    ]
