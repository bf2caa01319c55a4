require ["date", "relational", "fileinto"];
if currentdate :value "ge" "year" "2024" { fileinto "Now2024"; }
if currentdate :zone "+0000" :is "zone" "+0000" { fileinto "ZoneUTC"; }
if currentdate :value "lt" "year" "2100" { fileinto "Before2100"; }
