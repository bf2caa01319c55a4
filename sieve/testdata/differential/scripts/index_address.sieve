require ["index", "fileinto"];
if address :index 2 :is "from" "third@example.org" { fileinto "IndexHeaderNotAddress"; }
if address :index 2 :is "from" "second@example.net" { fileinto "SecondFromHeader"; }
