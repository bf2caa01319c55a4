# stop ends this script only; its flag stays on the implicit keep.
require "imap4flags";
addflag "$site";
stop;
addflag "$never";
