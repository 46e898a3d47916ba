from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Clinic',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('slug', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=200)),
                ('name_kana', fields.CharField(max_length=200)),
                ('postal_code', fields.CharField(max_length=8)),
                ('address', fields.CharField(max_length=300)),
                ('phone', fields.CharField(max_length=20)),
                ('time_zone', fields.CharField(default='Asia/Tokyo', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'booking_clinic', 'app': 'booking', 'pk_attr': 'id', 'table_description': 'A clinic (診療所) using Tsunagu. ``slug`` names its public page.'},
            bases=['Model'],
        ),
    ]
