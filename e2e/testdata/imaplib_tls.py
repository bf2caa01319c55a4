"""STARTTLS and IMAPS with Python's standard imaplib and ssl, verifying the server's
certificate against the CA file given (Strata's generated self-signed certificate).

Usage: imaplib_tls.py HOST PORT IMAPS_PORT CAFILE USER PASSWORD
"""
import imaplib
import ssl
import sys


def check(result, what):
    typ, data = result
    if typ != "OK":
        sys.exit(f"{what}: {typ} {data!r}")
    return data


def main():
    host, port, imaps_port, cafile, user, password = sys.argv[1:7]
    ctx = ssl.create_default_context(cafile=cafile)

    # RFC 9051 6.2.1: STARTTLS, then the capabilities again, now without STARTTLS.
    imap = imaplib.IMAP4(host, int(port))
    if "STARTTLS" not in imap.capabilities:
        sys.exit(f"no STARTTLS before TLS: {imap.capabilities}")
    check(imap.starttls(ssl_context=ctx), "STARTTLS")
    if "STARTTLS" in imap.capabilities or "AUTH=PLAIN" not in imap.capabilities:
        sys.exit(f"capabilities after STARTTLS: {imap.capabilities}")
    if imap.sock.version() not in ("TLSv1.2", "TLSv1.3"):
        sys.exit(f"TLS version {imap.sock.version()}")
    check(imap.login(user, password), "LOGIN over STARTTLS")
    check(imap.select("INBOX"), "SELECT over STARTTLS")
    imap.logout()

    # RFC 8314: implicit TLS, AUTHENTICATE PLAIN.
    imaps = imaplib.IMAP4_SSL(host, int(imaps_port), ssl_context=ctx)
    if "STARTTLS" in imaps.capabilities:
        sys.exit(f"IMAPS offers STARTTLS: {imaps.capabilities}")
    check(imaps.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode()), "AUTHENTICATE PLAIN over IMAPS")
    check(imaps.create("TLS"), "CREATE over IMAPS")
    check(imaps.append("TLS", r"(\Seen)", None, b"Subject: over tls\r\n\r\nsecret\r\n"), "APPEND over IMAPS")
    imaps.logout()
    print("imaplib TLS ok")


if __name__ == "__main__":
    main()
