require ["editheader", "relational", "comparator-i;ascii-numeric", "index", "fileinto"];
deleteheader :index 1 "x-multi";
if header :count "eq" :comparator "i;ascii-numeric" "x-multi" "1" { fileinto "OneLeft"; }
if header :is "x-multi" "second" { fileinto "SecondLeft"; }
