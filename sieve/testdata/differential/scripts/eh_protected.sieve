require ["editheader", "relational", "comparator-i;ascii-numeric", "fileinto"];
deleteheader "received";
addheader "Received" "fake";
if header :count "eq" :comparator "i;ascii-numeric" "received" "2" { fileinto "Protected"; }
