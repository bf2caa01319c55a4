# spamtest without :comparator compares with i;ascii-casemap (RFC 5228 2.7.3): "10" is
# less than "5" as text.
require ["spamtest", "relational", "fileinto"];
if spamtest :value "ge" "5" { fileinto "GE5"; } else { fileinto "LT5"; }
