# Received and Auto-Submitted may be added but not deleted (RFC 5293 9), in Pigeonhole.
require ["editheader", "relational", "comparator-i;ascii-numeric", "fileinto", "variables"];
deleteheader "received";
if header :count "eq" :comparator "i;ascii-numeric" "received" "1" { fileinto "R1"; }
addheader "Received" "fake";
if header :count "eq" :comparator "i;ascii-numeric" "received" "2" { fileinto "R2"; }
if header :is "received" "fake" { fileinto "FakeSeen"; }
addheader "Auto-Submitted" "auto-generated";
if header :is "auto-submitted" "auto-generated" { fileinto "AutoAdded"; }
deleteheader "auto-submitted";
if exists "auto-submitted" { fileinto "AutoKept"; }
