require ["spamtestplus", "relational", "comparator-i;ascii-numeric", "fileinto"];
if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { fileinto "Over50"; }
elsif spamtest :percent :value "ge" :comparator "i;ascii-numeric" "45" { fileinto "From45"; }
elsif spamtest :percent :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "Zero"; }
else { fileinto "Other"; }
