# A site script that flags the message and leaves the implicit keep.
require "imap4flags";
addflag "\\Flagged";
