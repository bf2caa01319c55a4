require ["date", "relational", "fileinto"];
if date :value "ge" "date" "date" "2024-05-01" { fileinto "AfterMay"; }
if date :value "lt" :zone "+0000" "date" "hour" "08" { fileinto "EarlyUTC"; }
