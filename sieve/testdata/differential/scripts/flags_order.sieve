# Flags are a set (RFC 5232 3): sieve-test prints the system flags first in a fixed order.
# Flags IMAP cannot store (\Recent, non-atoms) are dropped.
require ["imap4flags", "fileinto"];
addflag ["k1", "\\Draft", "\\Seen", "\\Deleted", "\\Answered", "\\Flagged", "K1", "\\Recent", "x*", "a(b", "{x", "ok]"];
if hasflag :contains "(" { fileinto "HasParen"; }
fileinto "Archive";
fileinto :flags ["\\Bogus", "b", "\\seen", "a"] "Lists";
