#!/usr/bin/env python3
"""Delivers one message over LMTP through each frontend's published port (Python's
smtplib.LMTP, as an MTA would) and checks over IMAP, on the same frontend, that it arrived
exactly once in demo@example.com's INBOX.

    lmtp_check.py LMTP_ADDR=IMAP_ADDR ...
"""
import imaplib
import smtplib
import sys
import time
import uuid


def check(lmtp_addr, imap_addr):
    host, port = lmtp_addr.rsplit(":", 1)
    msgid = "<%s@cluster-check>" % uuid.uuid4().hex
    body = ("From: check@example.net\r\nTo: demo@example.com\r\nSubject: cluster LMTP check\r\n"
            "Message-ID: %s\r\n\r\nDelivered through %s.\r\n" % (msgid, lmtp_addr))
    with smtplib.LMTP(host, int(port), timeout=30) as lmtp:
        refused = lmtp.sendmail("check@example.net", ["demo@example.com"], body)
        if refused:
            raise SystemExit("%s refused %s" % (lmtp_addr, refused))
    host, port = imap_addr.rsplit(":", 1)
    imap = imaplib.IMAP4(host, int(port), timeout=30)
    imap.login("demo@example.com", "demo")
    # The 250 means committed; a frontend reads at the session's point, so it is there now.
    imap.select("INBOX", readonly=True)
    typ, data = imap.uid("SEARCH", None, "HEADER", "Message-ID", msgid)
    imap.logout()
    uids = data[0].split()
    if typ != "OK" or len(uids) != 1:
        raise SystemExit("%s: message %s found %d times over IMAP on %s" % (lmtp_addr, msgid, len(uids), imap_addr))
    print("LMTP on %s delivered %s, seen once over IMAP on %s" % (lmtp_addr, msgid, imap_addr))


def main():
    for pair in sys.argv[1:]:
        lmtp_addr, imap_addr = pair.split("=", 1)
        for attempt in range(30):
            try:
                check(lmtp_addr, imap_addr)
                break
            except (OSError, smtplib.SMTPException) as err:
                if attempt == 29:
                    raise
                print("LMTP on %s not ready (%s); retrying" % (lmtp_addr, err))
                time.sleep(2)


if __name__ == "__main__":
    main()
