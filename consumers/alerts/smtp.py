"""Alerts by email, through the standard library's SMTP client and the ``ASSETPIPE_SMTP_*`` settings:
STARTTLS first when asked, then a login when a user is set. A 4xx answer or a lost connection may pass
on a later attempt; a 5xx answer is final."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from assetpipe.consumers.alerts.exceptions import AlertDeliveryError
from assetpipe.schemas.settings import Settings


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.sender = settings.smtp_from or "assetpipe@localhost"
        self._starttls = settings.smtp_starttls
        self._username = settings.smtp_username
        self._password = settings.smtp_password
        self._timeout = settings.smtp_timeout_s

    @property
    def configured(self) -> bool:
        return bool(self.host)

    def send(self, message: EmailMessage) -> None:
        """Send one message in one SMTP conversation; ``AlertDeliveryError`` when it was not taken."""
        if not self.host:
            raise AlertDeliveryError("no SMTP server: set ASSETPIPE_SMTP_HOST", retryable=False)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self._timeout) as client:
                if self._starttls:
                    client.starttls(context=ssl.create_default_context())
                if self._username:
                    password = self._password.get_secret_value() if self._password is not None else ""
                    client.login(self._username, password)
                refused = client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise AlertDeliveryError(f"SMTP {exc.smtp_code} {text}", retryable=400 <= exc.smtp_code < 500) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise AlertDeliveryError(f"SMTP refused the recipients: {exc.recipients}", retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise AlertDeliveryError(f"SMTP {self.host}:{self.port}: {exc}", retryable=True) from exc
        if refused:
            raise AlertDeliveryError(f"SMTP refused {', '.join(refused)}", retryable=False)
