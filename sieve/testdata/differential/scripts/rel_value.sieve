require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "gt" :comparator "i;ascii-numeric" "x-priority" "2" { fileinto "PrioGt2"; }
if header :value "le" :comparator "i;ascii-numeric" "x-priority" "2" { fileinto "PrioLe2"; }
if header :value "ne" :comparator "i;ascii-numeric" "x-count" "42" { fileinto "CountNe42"; }
