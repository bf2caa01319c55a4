require ["spamtestplus", "relational", "comparator-i;ascii-numeric", "variables", "fileinto"];
if spamtest :percent :matches "*" { set "p" "${1}"; }
if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { fileinto "Over50-${p}"; }
else { fileinto "Under-${p}"; }
