require ["relational", "fileinto"];
if header :value "lt" "subject" "N" { fileinto "BeforeN"; }
if header :value "ge" :comparator "i;octet" "subject" "a" { fileinto "OctetGeA"; }
if address :value "gt" :domain "from" "example.b" { fileinto "DomainGt"; }
