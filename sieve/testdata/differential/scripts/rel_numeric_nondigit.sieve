require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "gt" :comparator "i;ascii-numeric" "subject" "999999" { fileinto "InfGt"; }
if header :value "eq" :comparator "i;ascii-numeric" "subject" "abc" { fileinto "InfEq"; }
if header :value "lt" :comparator "i;ascii-numeric" "x-count" "0100" { fileinto "LeadingZeros"; }
