#!/usr/bin/env python3
"""IMAP check of the compose cluster (deploy/cluster.sh test).

Opens one session per frontend as demo@example.com, APPENDs a message through each and
FETCHes it through the other; then runs the --kill command (which SIGKILLs the Raft leader)
and, within a bounded retry loop, APPENDs and FETCHes again in the same sessions, reconnecting
only if a frontend dropped the connection. Finally every acknowledged APPEND must be in INBOX
exactly once. Prints how long after the kill the first write through each frontend succeeded.
"""
import argparse
import imaplib
import subprocess
import sys
import time
import uuid

USER, PASSWORD = "demo@example.com", "demo"
RETRY_FOR = 60.0  # seconds a write may stay unavailable after the leader is killed
VISIBLE_WITHIN = 10.0  # seconds an APPEND may take to show through the other frontend


class Session:
    def __init__(self, addr):
        self.addr = addr
        self.reconnects = 0
        self.imap = None
        self.connect()

    def connect(self):
        host, port = self.addr.rsplit(":", 1)
        self.imap = imaplib.IMAP4(host, int(port), timeout=30)
        check(self.imap.login(USER, PASSWORD), "LOGIN")
        check(self.imap.select("INBOX"), "SELECT INBOX")

    def reconnect(self):
        try:
            self.imap.shutdown()
        except OSError:
            pass
        self.reconnects += 1
        self.connect()

    def append(self, label):
        """APPENDs a new message; returns its Message-ID once the server acknowledged it."""
        msgid = "<%s@cluster-test>" % uuid.uuid4()
        body = ("From: demo@example.com\r\nTo: demo@example.com\r\nSubject: %s\r\n"
                "Message-ID: %s\r\n\r\n%s through %s\r\n" % (label, msgid, label, self.addr))
        check(self.imap.append("INBOX", None, None, body.encode()), "APPEND")
        return msgid

    def count(self, msgid):
        """How many messages in INBOX carry msgid, seen from this session."""
        check(self.imap.noop(), "NOOP")
        typ, data = self.imap.uid("SEARCH", None, "HEADER", "Message-ID", '"%s"' % msgid)
        check((typ, data), "UID SEARCH")
        uids = data[0].split()
        for uid in uids:
            typ, fetched = self.imap.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            check((typ, fetched), "UID FETCH")
            if msgid.encode() not in b"".join(p[1] for p in fetched if isinstance(p, tuple)):
                raise AssertionError("UID %s of %s does not carry its Message-ID" % (uid, msgid))
        return len(uids)


def visible(session, msgid, deadline):
    """Polls session until msgid is in INBOX exactly once; returns how long that took. Another
    session sees an APPEND once the change reaches it, which is not at once."""
    start = time.monotonic()
    while True:
        n = session.count(msgid)
        if n == 1:
            return time.monotonic() - start
        if n > 1 or time.monotonic() > deadline:
            raise AssertionError("%s: %d copies through %s" % (msgid, n, session.addr))
        time.sleep(0.1)


def check(resp, what):
    typ, data = resp
    if typ != "OK":
        raise imaplib.IMAP4.error("%s: %s %r" % (what, typ, data))
    return data


def with_retry(session, fn, deadline):
    """Runs fn until it succeeds; a dropped connection is reopened. Fails after deadline."""
    while True:
        try:
            return fn()
        except (imaplib.IMAP4.error, OSError) as e:
            if time.monotonic() > deadline:
                raise AssertionError("%s: still failing after the deadline: %s" % (session.addr, e))
            print("  %s: %s (retrying)" % (session.addr, e), flush=True)
            if isinstance(e, (imaplib.IMAP4.abort, OSError)):
                try:
                    session.reconnect()
                except (imaplib.IMAP4.error, OSError) as ce:
                    print("  %s: reconnect: %s" % (session.addr, ce), flush=True)
            time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kill", required=True, help="shell command that kills the Raft leader")
    ap.add_argument("frontends", nargs=2, help="host:port of each frontend")
    args = ap.parse_args()

    sessions = [Session(a) for a in args.frontends]
    acked = []
    for i, s in enumerate(sessions):
        other = sessions[1 - i]
        msgid = s.append("before")
        acked.append(msgid)
        seen = visible(other, msgid, time.monotonic() + VISIBLE_WITHIN)
        print("APPEND through %s, FETCH through %s %.2fs later: ok" % (s.addr, other.addr, seen), flush=True)

    subprocess.run(args.kill, shell=True, check=True)
    killed = time.monotonic()
    deadline = killed + RETRY_FOR
    for i, s in enumerate(sessions):
        other = sessions[1 - i]
        msgid = with_retry(s, lambda: s.append("after"), deadline)
        took = time.monotonic() - killed
        acked.append(msgid)
        seen = with_retry(other, lambda: visible(other, msgid, time.monotonic() + VISIBLE_WITHIN), deadline)
        print("after the kill: APPEND through %s acknowledged %.1fs after the kill, FETCH through %s %.2fs later: ok"
              % (s.addr, took, other.addr, seen), flush=True)

    deadline = time.monotonic() + RETRY_FOR
    for s in sessions:
        for msgid in acked:
            n = with_retry(s, lambda: s.count(msgid), deadline)
            if n != 1:
                raise AssertionError("%s: %d copies through %s" % (msgid, n, s.addr))
        print("%s: all %d acknowledged messages present exactly once (reconnects: %d)"
              % (s.addr, len(acked), s.reconnects), flush=True)
        s.imap.logout()


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, imaplib.IMAP4.error, OSError, subprocess.CalledProcessError) as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
