require ["editheader", "fileinto"];
addheader "X-Utf8" "Grüße";
if header :is "x-utf8" "Grüße" { fileinto "Utf8RoundTrip"; }
