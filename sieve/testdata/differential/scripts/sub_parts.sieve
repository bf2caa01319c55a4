require ["subaddress", "envelope", "fileinto"];
if envelope :user :is "to" "me" { fileinto "User"; }
if envelope :detail :is "to" "orders" { fileinto "Detail"; }
if address :detail :is "to" "" { fileinto "EmptyDetail"; }
if address :user :is "to" "me" { fileinto "HdrUser"; }
