"""A delivery session of Python's smtplib.LMTP against Strata's LMTP port.

Usage: lmtp_session.py HOST PORT. Prints "ok" when every check passes; the Go test then
reads the delivered messages back over IMAP.
"""
import smtplib
import sys

host, port = sys.argv[1], int(sys.argv[2])
s = smtplib.LMTP(host, port)
code, _ = s.ehlo("python.test")  # smtplib.LMTP sends LHLO
assert code == 250, code
for ext in ("pipelining", "8bitmime", "enhancedstatuscodes", "chunking", "smtputf8", "size"):
    assert s.has_extn(ext), "LHLO lacks " + ext

msg = b"From: py@example.org\r\nSubject: from smtplib\r\nMessage-ID: <smtplib@example.org>\r\n\r\nHello\r\n.dot line\r\n"
refused = s.sendmail("py@example.org", ["demo@example.com"], msg)
assert refused == {}, refused

# smtplib reads one reply after DATA, so each transaction here has one recipient.
try:
    s.sendmail("py@example.org", ["nobody@example.com"], msg)
    raise SystemExit("nobody@example.com was accepted")
except smtplib.SMTPRecipientsRefused as e:
    code, text = e.recipients["nobody@example.com"]
    assert code == 550 and text.startswith(b"5.1.1"), e.recipients

utf8 = "From: py@example.org\r\nSubject: caf\u00e9 from smtplib\r\n\r\nna\u00efve\r\n".encode()
refused = s.sendmail("py@example.org", ["demo@example.com"], utf8, mail_options=["BODY=8BITMIME"])
assert refused == {}, refused

# smtplib declares SIZE (RFC 1870), so the server refuses at MAIL.
try:
    s.sendmail("py@example.org", ["demo@example.com"], b"Subject: big\r\n\r\n" + b"x" * 5000 + b"\r\n")
    raise SystemExit("a message over the size limit was accepted")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 552 and e.smtp_error.startswith(b"5.3.4"), (e.smtp_code, e.smtp_error)

s.quit()
print("ok")
