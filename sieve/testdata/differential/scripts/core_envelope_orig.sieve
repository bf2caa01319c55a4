require ["envelope", "fileinto"];
if envelope :is "to" "me@example.org" { fileinto "Final"; }
if envelope :is "to" "alias@example.org" { fileinto "Original"; }
