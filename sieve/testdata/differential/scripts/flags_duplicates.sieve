require "imap4flags";
addflag "Alpha";
addflag "ALPHA beta";
addflag "Beta";
