"""An IMAP session with Python's standard imaplib against a running Strata.

Usage: imaplib_session.py HOST PORT USER PASSWORD
Exits non-zero with a message on the first unexpected answer.
"""
import imaplib
import sys


def check(result, what):
    typ, data = result
    if typ != "OK":
        sys.exit(f"{what}: {typ} {data!r}")
    return data


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    imap = imaplib.IMAP4(host, port)
    check(imap.login(user, password), "LOGIN")
    check(imap.create("Python"), "CREATE")
    folders = check(imap.list(), "LIST")
    if not any(b'"Python"' in f or f.endswith(b" Python") for f in folders):
        sys.exit(f"LIST does not show Python: {folders!r}")

    for i in range(3):
        body = (f"From: py@example.org\r\nTo: demo@example.com\r\nSubject: imaplib {i}\r\n"
                f"\r\nHello from imaplib, message {i}.\r\n").encode()
        check(imap.append("Python", "(\\Flagged)" if i == 1 else None, None, body), "APPEND")

    data = check(imap.select("Python"), "SELECT")
    if data[0] != b"3":
        sys.exit(f"SELECT reports {data[0]!r} messages, want 3")

    data = check(imap.fetch("1:3", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH headers")
    subjects = [part[1] for part in data if isinstance(part, tuple)]
    for i in range(3):
        if not any(f"imaplib {i}".encode() in s for s in subjects):
            sys.exit(f"FETCH is missing subject {i}: {data!r}")

    data = check(imap.fetch("2", "(BODY[TEXT])"), "FETCH text")
    if b"message 1." not in data[0][1]:
        sys.exit(f"BODY[TEXT] of 2 is {data!r}")

    check(imap.store("3", "+FLAGS", "(\\Deleted)"), "STORE")
    data = check(imap.fetch("1:3", "(FLAGS)"), "FETCH flags")
    flags = b" ".join(d for d in data if isinstance(d, bytes))
    if b"\\Seen" not in flags or b"\\Flagged" not in flags or b"\\Deleted" not in flags:
        sys.exit(f"flags after STORE: {data!r}")

    data = check(imap.search(None, "ALL"), "SEARCH ALL")
    if data[0].split() != [b"1", b"2", b"3"]:
        sys.exit(f"SEARCH ALL: {data!r}")

    data = check(imap.expunge(), "EXPUNGE")
    if data != [b"3"]:
        sys.exit(f"EXPUNGE answered {data!r}, want [b'3']")
    data = check(imap.search(None, "ALL"), "SEARCH ALL after EXPUNGE")
    if data[0].split() != [b"1", b"2"]:
        sys.exit(f"SEARCH ALL after EXPUNGE: {data!r}")

    check(imap.close(), "CLOSE")
    typ, _ = imap.logout()
    if typ != "BYE":
        sys.exit(f"LOGOUT: {typ}")
    print("imaplib session ok")


if __name__ == "__main__":
    main()
