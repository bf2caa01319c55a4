require ["date", "fileinto"];
if date :matches "subject" "year" "*" { fileinto "Parsed"; }
if not date :matches "from" "date" "*" { fileinto "Unparsable"; }
