require ["variables", "fileinto"];
if header :matches "date" "???, ?? ??? ????*" { fileinto "${1}${2}${3}-${5}${6}-${10}"; }
