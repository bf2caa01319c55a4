require ["index", "fileinto"];
if header :index 2 :contains "received" "laptop" { fileinto "Second"; }
if header :index 1 :last :contains "received" "laptop" { fileinto "LastIsLaptop"; }
if header :index 3 :contains "received" "" { fileinto "Third"; }
