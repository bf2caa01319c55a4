require ["editheader", "fileinto"];
addheader "X-Sieve" "filtered";
if header :is "x-sieve" "filtered" { fileinto "Added"; }
