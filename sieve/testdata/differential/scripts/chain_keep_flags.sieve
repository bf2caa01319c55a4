# A site script that keeps the message with a flag.
require "imap4flags";
keep :flags "\\Seen";
