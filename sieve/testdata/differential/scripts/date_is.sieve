require ["date", "fileinto"];
if date :is "date" "year" "2024" { fileinto "Y2024"; }
if date :is "date" "month" "05" { fileinto "May"; }
if date :zone "+0000" :is "date" "year" "2024" { fileinto "UTC2024"; }
