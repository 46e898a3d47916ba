from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from booking.models import default_reminder_offsets
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('booking', '0003_waitlist')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Clinic',
            name='departments',
            field=fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Clinic',
            name='open_on_holidays',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Clinic',
            name='reminder_offsets_minutes',
            field=fields.JSONField(default=default_reminder_offsets, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Menu',
            name='pre_consultation',
            field=fields.BooleanField(default=False),
        ),
    ]
