"""Messages to patients — booking confirmations, changes, cancellations, reminders — by SMS and
e-mail behind the :class:`Notifier` port.

Wire a :class:`Composite` at the composition root: ``Composite(sms=TwilioSms(...) or
ConsoleSms(), email=SmtpEmail(...) or ConsoleEmail())``, and close it in the lifespan.
"""

from patient_portal.notify.console import ConsoleEmail, ConsoleSms
from patient_portal.notify.port import (
    Channel,
    ChannelResult,
    ChannelUnavailable,
    Composite,
    EmailSender,
    Message,
    Notifier,
    NotifyError,
    Outcome,
    SendReport,
    SmsSender,
    Undeliverable,
    mask_email,
)
from patient_portal.notify.smtp_email import SmtpEmail
from patient_portal.notify.twilio_sms import TwilioSms

__all__ = [
    "Channel",
    "ChannelResult",
    "ChannelUnavailable",
    "Composite",
    "ConsoleEmail",
    "ConsoleSms",
    "EmailSender",
    "Message",
    "Notifier",
    "NotifyError",
    "Outcome",
    "SendReport",
    "SmsSender",
    "SmtpEmail",
    "TwilioSms",
    "Undeliverable",
    "mask_email",
]
