"""An SMTP server for the mail tests: aiosmtpd storing each message in a Maildir, with TLS
(STARTTLS required, or implicit) and AUTH required after TLS.

usage: smtp_double.py MAILDIR CERT KEY PORT starttls|implicit USER PASSWORD
Prints "ready" once it accepts connections; runs until killed.
"""
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

maildir, cert, key, port, mode, user, password = sys.argv[1:8]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    # handled=False: aiosmtpd then answers 535 itself (by default it answers nothing).
    return AuthResult(success=ok, handled=False)


common = dict(
    hostname="127.0.0.1",
    port=int(port),
    authenticator=authenticate,
    auth_required=True,
    # With implicit TLS aiosmtpd does not see the connection as TLS; it is, from the start.
    auth_require_tls=(mode == "starttls"),
)
if mode == "starttls":
    c = Controller(Mailbox(maildir), tls_context=ctx, require_starttls=True, **common)
else:
    c = Controller(Mailbox(maildir), ssl_context=ctx, **common)
c.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
c.stop()
