"""The photo ID is kept with the patient, not per consult: the newest photo each patient sent from
a consult room becomes their registered photo, the older ones are deleted, and the table loses
its appointment and clinic columns. The table keeps its name, so the sealed photos (encrypted
under the context ``portal_identity_photo.data``) move without being decrypted. Not reversible:
the older photos are gone."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from patient_portal.consult_models import PhotoIdDocument
from tortoise import fields

# One row per patient: delete every photo that has a newer one of the same patient (ties broken
# by id). Plain SQL that SQLite and PostgreSQL both run; no semicolon, since SQLite's migration
# runner splits statements on it.
KEEP_THE_NEWEST_PER_PATIENT = (
    "DELETE FROM portal_identity_photo WHERE EXISTS ("
    "SELECT 1 FROM portal_identity_photo AS newer"
    " WHERE newer.patient_id = portal_identity_photo.patient_id"
    " AND (newer.uploaded_at > portal_identity_photo.uploaded_at"
    " OR (newer.uploaded_at = portal_identity_photo.uploaded_at"
    " AND newer.id > portal_identity_photo.id)))"
)

class Migration(migrations.Migration):
    dependencies = [('booking', '0001_initial'), ('booking', '0002_menus_hours_appointments'), ('booking', '0003_waitlist'), ('booking', '0004_clinic_settings'), ('portal', '0005_identity_photo')]

    initial = False

    operations = [
        ops.RunSQL(KEEP_THE_NEWEST_PER_PATIENT),
        ops.RemoveField(model_name='IdentityPhoto', name='appointment_id'),
        ops.RemoveField(model_name='IdentityPhoto', name='clinic_id'),
        ops.AlterField(
            model_name='IdentityPhoto',
            name='patient_id',
            field=fields.UUIDField(unique=True),
        ),
        ops.AddField(
            model_name='IdentityPhoto',
            name='document',
            field=fields.CharEnumField(null=True, description='MY_NUMBER_CARD: my_number_card\nDRIVERS_LICENSE: drivers_license\nPASSPORT: passport\nRESIDENCE_CARD: residence_card\nOTHER: other', enum_type=PhotoIdDocument, max_length=20),
        ),
        ops.AlterModelOptions(
            name='IdentityPhoto',
            options={'table': 'portal_identity_photo', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'The registered photo ID of a patient (one each), shown to them and to their consult doctor.'},
        ),
    ]
